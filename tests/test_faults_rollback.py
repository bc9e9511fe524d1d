"""Faults in the middle of the rollback's and rollback.undo's changing steps (issue #15): the
config switch, the session warm-up and the redeploy, each with the faults that can reach it.

Data-driven, as test_faults_steps.py (whose rollback helpers these cells reuse): (procedure,
step, fault) -> what the fault leaves and how the job is finished. Every cell checks that the
app's env file is whole (the old text or the new, byte for byte, no temporary file), that the
Sentinel primary is the one the run began with (unless the cell kills it), and that the finish
leaves the app on a config whose store holds its sessions. One lab, repaired after each cell.
docs/fault-table.md lists the cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redis_ha import appconfig
from redis_ha.appconfig import envfile
from redis_ha.conn import call, client
from redis_ha.lab.cluster import Lab

from .fault_cells import Case, fault_lab, records, run_cell, step_now
from .test_faults_steps import (
    _app_on_sentinel,
    _config_whole,
    _on_sentinel,
    _on_single,
    _rollback,
    _rollback_undo,
    _warming,
)

pytestmark = pytest.mark.lab
UNDO_PREFIX = "session:undo:"  # sessions the app made on the single instance: the undo's copy
UNDO_KEYS = 20_000
_baseline: dict[str, int] = {}  # the primary's DBSIZE before the undo's warm-up


@pytest.fixture(scope="module")
def rlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from fault_lab(tmp_path_factory, "faultsrollback")


def _single(lab: Lab) -> str:
    assert lab.inv.single is not None
    return lab.inv.single.name


def _old_text(lab: Lab) -> str:
    return appconfig.lab_env_text(lab.inv)


def _single_text(lab: Lab) -> str:
    return envfile.render(_old_text(lab), appconfig.target_vars(lab.inv, appconfig.SINGLE))


def _back_text(lab: Lab) -> str:
    """What rollback.undo writes over the single-mode file."""
    return envfile.render(_single_text(lab), appconfig.target_vars(lab.inv, appconfig.SENTINEL))


def _backups(lab: Lab) -> list[Path]:
    env = appconfig.env_file(lab.inv)
    return sorted(env.parent.glob(f"{env.name}.bak.*"))


def _fresh(setup: Callable[[Lab], str]) -> Callable[[Lab], str]:
    """`setup`, with the env file's earlier backups gone: a cell sees only its own run's."""

    def run(lab: Lab) -> str:
        for b in _backups(lab):
            b.unlink()
        return setup(lab)

    return run


def _app_on_single(lab: Lab) -> str:
    """The app rolled back to the single instance, which holds UNDO_KEYS sessions of its own
    (made there since the rollback): what rollback.undo must carry back into the cluster."""
    inv = lab.inv
    assert inv.single is not None
    _app_on_sentinel(lab)
    envfile.atomic_write(appconfig.env_file(inv), _single_text(lab))
    c = client(inv, inv.single, timeout=10)
    try:
        p = c.pipeline(transaction=False)
        for i in range(UNDO_KEYS):
            p.set(f"{UNDO_PREFIX}{i}", "made on the single instance", ex=3600)
        p.execute()
    finally:
        c.close()
    primary = lab.current_primary()
    _baseline["primary"] = int(call(inv, primary, "DBSIZE"))
    return primary.name


def _warming_back(lab: Lab, node: str, jdir: Path) -> bool:
    """The undo's warm-up has copied some of the single instance's sessions, not all (the
    step, not the preflight's lock key, made the primary grow)."""
    if step_now(jdir) != "warm-sessions":
        return False
    n = int(call(lab.inv, lab.inv.node(node), "DBSIZE")) - _baseline["primary"]
    return 1 < n < UNDO_KEYS


def _text_is(lab: Lab, text: str) -> None:
    """The env file is `text` byte for byte, no temporary file beside it."""
    env = appconfig.env_file(lab.inv)
    assert env.read_text() == text
    assert not list(env.parent.glob(f".{env.name}.*.tmp"))


def _backups_are(lab: Lab, text: str) -> None:
    """Every backup this cell's run made holds the config the app ran on before it began (a
    resumed switch must not save the text it had already written)."""
    got = _backups(lab)
    assert got, "no backup of the env file"
    for b in got:
        assert b.read_text() == text, f"{b.name} is not the config before the run"


def _step_failed(jdir: Path, step: str) -> bool:
    return any(
        r["event"] == "step-end" and r["step"] == step and r.get("result") == "failed"
        for r in records(jdir)
    )


def _last_state(jdir: Path) -> dict:
    return next(r["state"] for r in reversed(records(jdir)) if r.get("state") is not None)


# --- what each fault leaves -----------------------------------------------------------------------


def _left_old(lab: Lab, _node: str, _jdir: Path) -> None:
    _config_whole(lab, switched=False)


def _left_new(lab: Lab, _node: str, _jdir: Path) -> None:
    _config_whole(lab, switched=True)


def _left_single(lab: Lab, _node: str, _jdir: Path) -> None:
    _text_is(lab, _single_text(lab))


def _left_back(lab: Lab, _node: str, _jdir: Path) -> None:
    _text_is(lab, _back_text(lab))


def _warm_failed(lab: Lab, node: str, jdir: Path) -> None:
    """The warm-up failed (journaled), the app still on the config it had."""
    assert _step_failed(jdir, "warm-sessions")
    _config_whole(lab, switched=False)


def _failed_over(lab: Lab, node: str) -> None:
    """Sentinel replaces the dead primary, then the node comes back (not before: restarted
    empty as primary it would wipe its replicas)."""
    deadline = time.monotonic() + 30
    while lab.current_primary().name == node:
        assert time.monotonic() < deadline, "no failover after the primary died"
        time.sleep(0.2)
    lab.up(timeout=60)


def _warm_failed_failover(lab: Lab, node: str, jdir: Path) -> None:
    """As `_warm_failed`, then `_failed_over`. The run's lock key, on the dead primary when the
    run ended, replicated: only the run itself (`--resume`) may take it over before it expires
    (30 s)."""
    _warm_failed(lab, node, jdir)
    _failed_over(lab, node)


def _warm_back_failed(lab: Lab, _node: str, jdir: Path) -> None:
    """The undo's warm-up failed (journaled), the app still on the single instance."""
    assert _step_failed(jdir, "warm-sessions")
    _text_is(lab, _single_text(lab))


def _warm_back_failed_failover(lab: Lab, node: str, jdir: Path) -> None:
    _warm_back_failed(lab, node, jdir)
    _failed_over(lab, node)


def _validated_through_failover(lab: Lab, node: str, jdir: Path) -> None:
    """The undo completed although the primary died after the app's restart: its validation
    (a client built as the app builds it, through Sentinel) rode through the failover."""
    assert not any(r["event"] == "step-end" and r.get("result") == "failed" for r in records(jdir))
    _text_is(lab, _back_text(lab))
    _failed_over(lab, node)


def _restored(lab: Lab, _node: str, jdir: Path) -> None:
    """Validation failed, the old config went back (byte for byte) and the journal says so."""
    assert _step_failed(jdir, "validate")
    _config_whole(lab, switched=False)
    assert _last_state(jdir).get("app_restored") is True


# --- the finished job -----------------------------------------------------------------------------


def _on_single_from_old(lab: Lab, node: str) -> None:
    _on_single(lab, node)
    _backups_are(lab, _old_text(lab))


def _back_on_cluster(lab: Lab, node: str) -> None:
    """The app on Sentinel discovery, the primary holding every session made on the single."""
    _on_sentinel(lab, node)
    c = client(lab.inv, lab.current_primary(), timeout=10)
    try:
        assert len(list(c.scan_iter(f"{UNDO_PREFIX}*", count=5000))) == UNDO_KEYS
    finally:
        c.close()


def _back_from_single(lab: Lab, node: str) -> None:
    _back_on_cluster(lab, node)
    _backups_are(lab, _single_text(lab))


def _drop_undo_keys(lab: Lab) -> None:
    """The undo's sessions gone from the cluster: the next cells' counts start from KEYS."""
    lab.up(timeout=60)
    c = client(lab.inv, lab.current_primary(), timeout=10)
    try:
        keys = list(c.scan_iter(f"{UNDO_PREFIX}*", count=5000))
        for i in range(0, len(keys), 5000):
            c.unlink(*keys[i : i + 5000])
    finally:
        c.close()


def _victim_single(lab: Lab, _node: str) -> list[str]:
    return [_single(lab)]


_ON_SENTINEL = _fresh(_app_on_sentinel)
_ON_SINGLE = _fresh(_app_on_single)
_STOPPED = ["interrupted", "end"]

CASES = {
    # (procedure, step, fault[:victim]): Case. The node is the Sentinel primary.
    # The switch holds right after writing the env file (change 1 is its backup).
    ("rollback", "switch-config", "sigkill"): Case(
        _ON_SENTINEL, _rollback, None, "sigkill", -9, ["apply"], "resume",
        hold="switch-config:2", left=_left_new, done=_on_single_from_old),
    ("rollback", "switch-config", "ctrl-c"): Case(
        _ON_SENTINEL, _rollback, None, "ctrl-c", 130, _STOPPED, "resume",
        hold="switch-config:2", left=_left_new, done=_on_single_from_old),
    # The copy's connections cut mid-copy: it reconnects and the rollback completes.
    ("rollback", "warm-sessions", "lost-connection:single"): Case(
        _ON_SENTINEL, _rollback, _warming, "lost-connection", 0, ["end"], "itself",
        victim=_victim_single, done=_on_single_from_old),
    ("rollback", "warm-sessions", "lost-connection:primary"): Case(
        _ON_SENTINEL, _rollback, _warming, "lost-connection", 0, ["end"], "itself",
        done=_on_single_from_old),
    # A store dies mid-copy: the warm-up fails before the switch; the app stays where it was.
    ("rollback", "warm-sessions", "node-dies:single"): Case(
        _ON_SENTINEL, _rollback, _warming, "node-dies", 1, ["end"], "rerun",
        victim=_victim_single, left=_warm_failed, done=_on_single_from_old),
    ("rollback", "warm-sessions", "node-dies:primary"): Case(
        _ON_SENTINEL, _rollback, _warming, "node-dies", 1, ["end"], "resume",
        left=_warm_failed_failover, done=_on_single_from_old),
    # The single instance dies right after the app's restart: validation fails, config back.
    # (--validate-wait 10: the minute it waits by default would only make the cell slower)
    ("rollback", "redeploy", "node-dies:single"): Case(
        _ON_SENTINEL, lambda n: [*_rollback(n), "--validate-wait", "10"], None, "node-dies", 1,
        ["undo", "end"], "itself",
        hold="redeploy:1", victim=_victim_single, left=_restored, done=_on_sentinel),
    # rollback.undo: sessions back into the cluster, the app back on Sentinel discovery.
    ("rollback-undo", "warm-sessions", "sigkill"): Case(
        _ON_SINGLE, _rollback_undo, _warming_back, "sigkill", -9, ["apply"], "resume",
        left=_left_single, done=_back_from_single),
    ("rollback-undo", "warm-sessions", "ctrl-c"): Case(
        _ON_SINGLE, _rollback_undo, _warming_back, "ctrl-c", 130, _STOPPED, "resume",
        left=_left_single, done=_back_from_single),
    ("rollback-undo", "switch-config", "sigkill"): Case(
        _ON_SINGLE, _rollback_undo, None, "sigkill", -9, ["apply"], "resume",
        hold="switch-config:2", left=_left_back, done=_back_from_single),
    ("rollback-undo", "switch-config", "ctrl-c"): Case(
        _ON_SINGLE, _rollback_undo, None, "ctrl-c", 130, _STOPPED, "resume",
        hold="switch-config:2", left=_left_back, done=_back_from_single),
    # The copy's connections to both sides cut mid-copy: it reconnects, the undo completes.
    ("rollback-undo", "warm-sessions", "lost-connection"): Case(
        _ON_SINGLE, _rollback_undo, _warming_back, "lost-connection", 0, ["end"], "itself",
        victim=lambda lab, node: [_single(lab), node], done=_back_from_single),
    # The source (lab: no persistence, it comes back empty) or the target dies mid-copy.
    ("rollback-undo", "warm-sessions", "node-dies:single"): Case(
        _ON_SINGLE, _rollback_undo, _warming_back, "node-dies", 1, ["end"], "rerun",
        victim=_victim_single, left=_warm_back_failed, done=_on_sentinel),
    ("rollback-undo", "warm-sessions", "node-dies:primary"): Case(
        _ON_SINGLE, _rollback_undo, _warming_back, "node-dies", 1, ["end"], "resume",
        left=_warm_back_failed_failover, done=_back_from_single),
    # The primary dies right after the app's restart on Sentinel discovery.
    ("rollback-undo", "redeploy", "node-dies:primary"): Case(
        _ON_SINGLE, _rollback_undo, None, "node-dies", 0, ["end"], "itself",
        hold="redeploy:1", left=_validated_through_failover, done=_back_from_single),
    # The app's restart has run on the new config; the step has not ended.
    ("rollback-undo", "redeploy", "sigkill"): Case(
        _ON_SINGLE, _rollback_undo, None, "sigkill", -9, ["apply"], "resume",
        hold="redeploy:1", left=_left_back, done=_back_from_single),
    ("rollback-undo", "redeploy", "ctrl-c"): Case(
        _ON_SINGLE, _rollback_undo, None, "ctrl-c", 130, _STOPPED, "resume",
        hold="redeploy:1", left=_left_back, done=_back_from_single),
}  # fmt: skip


@pytest.mark.parametrize("cell", list(CASES), ids=["/".join(k) for k in CASES])
def test_fault_in_rollback(rlab: Lab, cell: tuple[str, str, str], tmp_path: Path) -> None:
    case = CASES[cell]
    # The rollback never touches the cluster: the primary stays, unless the cell kills it.
    keeps = cell[2] != "node-dies:primary"
    case = Case(**{**case.__dict__, "primary_is_node": keeps})
    run_cell(rlab, cell[0], case, tmp_path, after=_drop_undo_keys)
