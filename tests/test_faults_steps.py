"""Faults in the middle of changing steps other than the switch (that one has its own table in
test_faults_mid_step.py): failover.manual's steer, replica.rebuild's full sync, the rollback's
warm-up and redeploy, split-brain's fence, salvage and demote.

Data-driven: (procedure, step, fault) -> what it leaves and how the job is finished. Every case
checks that the fault really landed mid-step (the state it changes is half-way), the exit code,
the journal, and that after the finish no node is half-configured and never two primaries.
One lab (production down-after, 3000 ms), repaired after each case. docs/fault-table.md lists
the cells.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_ha import appconfig
from redis_ha import facts as factsmod
from redis_ha import journal as journalmod
from redis_ha.actions.failover import STEER_PRIORITY
from redis_ha.appconfig import envfile
from redis_ha.conn import call, client
from redis_ha.lab import faults, scenarios
from redis_ha.lab.cluster import Lab

from .fault_cells import (
    HOLD,
    KEYS,
    Case,
    fault_lab,
    held_pid,
    no_writes,
    run_cell,
    step_now,
)
from .test_replica_rebuild import hold_full_sync_open

pytestmark = pytest.mark.lab
SYNC_S = 6.0  # the slowed full sync: long enough to land a fault in it
SPLIT_KEYS = 20_000  # written on the stale primary: what the salvage must carry over


@pytest.fixture(scope="module")
def slab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from fault_lab(tmp_path_factory, "faultsteps")


def _priority(lab: Lab, node: str) -> int | None:
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.replica_priority if f.up else None


def _steered(lab: Lab, node: str, _jdir: Path) -> bool:
    return _priority(lab, node) == STEER_PRIORITY


def _syncing(lab: Lab, node: str, _jdir: Path | None = None) -> bool:
    """Restarted by the rebuild, unpromotable, its full sync under way."""
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.up and f.role == "replica" and not f.link_up and f.replica_priority == 0


def _in_full_sync(lab: Lab, node: str, jdir: Path) -> bool:
    """The full-sync step runs, the replica syncing (the restart step leaves it the same way:
    a fault there would be another cell's)."""
    return step_now(jdir) == "full-sync" and _syncing(lab, node)


def _fenced(lab: Lab, node: str, _jdir: Path | None = None) -> bool:
    """The stale primary's writes are held by the fence (Redis 7.0 shows no pause in INFO)."""
    return factsmod.node_facts(lab.inv, lab.inv.node(node)).writes_paused is True


def _a_replica(lab: Lab) -> str:
    primary = lab.current_primary().name
    return next(n.name for n in lab.inv.nodes if n.name != primary)


def _crashed_empty_replica(lab: Lab) -> str:
    """A replica that crashed and lost its disk, and a primary whose full sync takes ~SYNC_S."""
    node = _a_replica(lab)
    lab.stop(node, kill=True)
    faults.wipe_data(lab, lab.inv.node(node))
    hold_full_sync_open(lab.inv, lab.current_primary(), keys=KEYS, seconds=SYNC_S)
    return node


def _split_with_writes(lab: Lab) -> str:
    """A replica promoted by hand that took SPLIT_KEYS writes of its own: the stale primary.

    With no replica of its own, min-replicas-to-write refuses them: the operator who promoted
    it lowered that too, then put it back. First every Sentinel must have seen it as a replica
    since the last cell: one that still remembers it claiming primary (its INFO comes every
    10 s) converts it back at once, wiping those writes before the tool can fence it (measured:
    the tool then found no stale primary, or a node mid-resync). Seen as a replica, a Sentinel
    waits 8 s after the promotion, and the fence holds its REPLICAOF until the demote.
    """
    node = _a_replica(lab)
    _seen_as_replica(lab, node)
    scenarios.manual_promotion(lab, node)
    c = client(lab.inv, lab.inv.node(node), timeout=10)
    try:
        c.config_set("min-replicas-to-write", "0")
        p = c.pipeline(transaction=False)
        for i in range(SPLIT_KEYS):
            p.set(f"split:{i}", "written on the stale side")
        p.execute()
    finally:
        c.config_set("min-replicas-to-write", lab.inv.settings.min_replicas_to_write)
        c.close()
    return node


def _seen_as_replica(lab: Lab, node: str, timeout: float = 30.0) -> None:
    """Wait until every Sentinel's last INFO of `node` reported it as a replica."""
    host, port = lab.inv.node(node).announced
    deadline = time.monotonic() + timeout
    for s in lab.inv.sentinels:
        c = client(lab.inv, s, timeout=2.0)
        try:
            while True:
                reps = c.sentinel_slaves(lab.inv.master_name)
                me = [r for r in reps if (r.get("ip"), int(r.get("port", 0))) == (host, port)]
                if me and me[0].get("role-reported") == "slave":
                    break
                assert time.monotonic() < deadline, (s.name, me)
                time.sleep(0.2)
        finally:
            c.close()


def _salvaging(lab: Lab, node: str, jdir: Path) -> bool:
    """In the salvage, its export written: the merge into the authoritative primary is on."""
    return step_now(jdir) == "salvage" and any(jdir.glob(f"salvage-{node}-*.jsonl"))


def _demoting(lab: Lab, node: str, jdir: Path) -> bool:
    """The demote's apply has begun (with the cells' fail point: held after its REPLICAOF,
    before the UNPAUSE; the step's milliseconds were too short to land a fault in by polling
    under load: the run could end between two polls)."""
    runs = journalmod.runs(jdir)
    last = journalmod.read(runs[-1])[-1:] if runs else []
    return bool(last) and last[0]["event"] == "apply" and last[0]["step"] == "demote"


def _demote_cut(lab: Lab, node: str, jdir: Path) -> None:
    """The fault landed inside the demote and left no acknowledging primary. The step never
    ended (SIGKILL), or, on Ctrl-C, the runner stopped it (or waited for it) and journaled so."""
    recs = journalmod.read(journalmod.runs(jdir)[-1])
    ends = [r for r in recs if r["event"] == "step-end" and r["step"] == "demote"]
    assert all(
        r["result"] == "interrupted" or "after the interrupt" in str(r["error"]) for r in ends
    ), ends
    assert no_writes(lab, node)


def _salvaged(lab: Lab, _node: str) -> None:
    """Every write the stale primary took is on the primary now; then they go (the next cells'
    full syncs are timed for KEYS keys)."""
    c = client(lab.inv, lab.current_primary(), timeout=10)
    try:
        keys = list(c.scan_iter("split:*", count=5000))
        assert len(keys) == SPLIT_KEYS, len(keys)
    finally:
        c.close()


def _app_text(lab: Lab) -> str:
    return appconfig.env_file(lab.inv).read_text()


def _app_on_sentinel(lab: Lab) -> str:
    """The app on Sentinel discovery, the legacy single instance empty: returns the primary."""
    inv = lab.inv
    assert inv.single is not None
    envfile.atomic_write(appconfig.env_file(inv), appconfig.lab_env_text(inv))
    call(inv, inv.single, "FLUSHALL")
    (inv.path.parent / HOLD).unlink(missing_ok=True)
    return lab.current_primary().name


def _app_on_sentinel_held(lab: Lab) -> str:
    """As `_app_on_sentinel`, and the app's next restart holds (30 s)."""
    primary = _app_on_sentinel(lab)
    (lab.inv.path.parent / HOLD).touch()
    return primary


def _single_keys(lab: Lab) -> int:
    assert lab.inv.single is not None
    return int(call(lab.inv, lab.inv.single, "DBSIZE"))


def _warming(lab: Lab, _node: str, _jdir: Path) -> bool:
    """The warm-up has copied some sessions to the single instance, not all."""
    return 0 < _single_keys(lab) < KEYS


def _restarting(lab: Lab, _node: str, _jdir: Path) -> bool:
    """The config switched to single, the app's restart (redeploy) under way."""
    mode = appconfig.mode_of(envfile.read(appconfig.env_file(lab.inv)))
    return mode == appconfig.SINGLE and held_pid(lab) is not None


def _config_whole(lab: Lab, switched: bool) -> None:
    """The app's env file is the old text or the new one, byte for byte; no temporary left."""
    old = appconfig.lab_env_text(lab.inv)
    new = envfile.render(old, appconfig.target_vars(lab.inv, appconfig.SINGLE))
    assert _app_text(lab) == (new if switched else old)
    assert not list(appconfig.env_file(lab.inv).parent.glob(".app.env.*.tmp"))


def _on_single(lab: Lab, _node: str) -> None:
    """The rollback is done: the app on the single instance, every session copied there."""
    assert appconfig.mode_of(envfile.read(appconfig.env_file(lab.inv))) == appconfig.SINGLE
    assert _single_keys(lab) >= KEYS


def _on_sentinel(lab: Lab, _node: str) -> None:
    assert appconfig.mode_of(envfile.read(appconfig.env_file(lab.inv))) == appconfig.SENTINEL


def _rollback(_node: str) -> list[str]:
    return ["rollback", "--yes"]


def _rollback_undo(_node: str) -> list[str]:
    return ["rollback.undo", "--yes"]


def _steer(node: str) -> list[str]:
    return ["failover.manual", "--yes", "--to", node]


def _rebuild(node: str) -> list[str]:
    return ["replica.rebuild", "--yes", "--force", "--node", node, "--sync-timeout", "30"]


def _recover(_node: str) -> list[str]:
    return ["splitbrain.recover", "--yes"]


CASES = {
    # (procedure, step, fault): Case
    ("failover-manual", "steer", "sigkill"): Case(
        _a_replica, _steer, _steered, "sigkill", -9, ["apply"], "resume"),
    ("failover-manual", "steer", "ctrl-c"): Case(
        _a_replica, _steer, _steered, "ctrl-c", 130, ["interrupted", "end"], "resume"),
    ("replica-rebuild", "full-sync", "sigkill"): Case(
        _crashed_empty_replica, _rebuild, _in_full_sync, "sigkill", -9, ["apply"], "resume"),
    ("replica-rebuild", "full-sync", "ctrl-c"): Case(
        _crashed_empty_replica, _rebuild, _in_full_sync, "ctrl-c", 130, ["interrupted", "end"],
        "resume"),
    # The connection the sync wait holds to the rebuilt replica is cut: it reconnects.
    ("replica-rebuild", "full-sync", "lost-connection"): Case(
        _crashed_empty_replica, _rebuild, _in_full_sync, "lost-connection", 0, ["end"], "itself"),
    ("replica-rebuild", "full-sync", "node-dies"): Case(
        _crashed_empty_replica, _rebuild, _in_full_sync, "node-dies", 1, ["undo", "end"], "rerun"),
    # A replica promoted by hand: the tool fences it (CLIENT PAUSE 120 s) and is killed after.
    ("split-brain", "fence", "sigkill"): Case(
        scenarios.manual_promotion, _recover, _fenced, "sigkill", -9, ["apply"], "resume",
        split=True),
    # ... and it took SPLIT_KEYS writes: the fault lands in their merge, then in the demote.
    ("split-brain", "salvage", "sigkill"): Case(
        _split_with_writes, _recover, _salvaging, "sigkill", -9, ["apply"], "resume",
        split=True, done=_salvaged),
    ("split-brain", "salvage", "ctrl-c"): Case(
        _split_with_writes, _recover, _salvaging, "ctrl-c", 130, ["interrupted", "end"],
        "resume", split=True, done=_salvaged),
    ("split-brain", "demote", "sigkill"): Case(
        _split_with_writes, _recover, _demoting, "sigkill", -9, ["apply"], "resume",
        split=True, left=_demote_cut, done=_salvaged, hold="demote:1"),
    ("split-brain", "demote", "ctrl-c"): Case(
        _split_with_writes, _recover, _demoting, "ctrl-c", 130, ["interrupted", "end"],
        "resume", split=True, left=_demote_cut, done=_salvaged, hold="demote:1"),
    # The rollback: the node is the Sentinel primary, which must stay as it is.
    ("rollback", "warm-sessions", "sigkill"): Case(
        _app_on_sentinel, _rollback, _warming, "sigkill", -9, ["apply"], "resume",
        left=lambda lab, _n, _j: _config_whole(lab, switched=False), done=_on_single),
    ("rollback", "warm-sessions", "ctrl-c"): Case(
        _app_on_sentinel, _rollback, _warming, "ctrl-c", 130, ["interrupted", "end"], "resume",
        left=lambda lab, _n, _j: _config_whole(lab, switched=False), done=_on_single),
    ("rollback", "redeploy", "sigkill"): Case(
        _app_on_sentinel_held, _rollback, _restarting, "sigkill", -9, ["apply"], "resume",
        left=lambda lab, _n, _j: _config_whole(lab, switched=True), done=_on_single),
    ("rollback", "redeploy", "ctrl-c"): Case(
        _app_on_sentinel_held, _rollback, _restarting, "ctrl-c", 130, ["interrupted", "end"],
        "undo", left=lambda lab, _n, _j: _config_whole(lab, switched=True), done=_on_sentinel,
        undo=_rollback_undo),
}  # fmt: skip


@pytest.mark.parametrize("cell", list(CASES), ids=["/".join(k) for k in CASES])
def test_fault_mid_step(slab: Lab, cell: tuple[str, str, str], tmp_path: Path) -> None:
    # the switch went to `node` / the rollback left the Sentinel primary as it was
    same = cell[0] in ("failover-manual", "rollback")
    case = dataclasses.replace(CASES[cell], primary_is_node=same)
    run_cell(slab, cell[0], case, tmp_path, after=_drop_split_keys)


def _drop_split_keys(lab: Lab) -> None:
    """The full sync back to normal speed, and the stale side's writes gone (the next cells'
    full syncs are timed for KEYS keys)."""
    lab.up(timeout=60)
    for ep in lab.inv.nodes:
        c = client(lab.inv, ep, timeout=2.0)
        try:
            c.config_set("rdb-key-save-delay", "0")
            if c.info("replication").get("role") == "master":
                for batch in _batches(c.scan_iter("split:*", count=5000)):
                    c.unlink(*batch)
        finally:
            c.close()


def _batches(it: Iterator[str], n: int = 5000) -> Iterator[list[str]]:
    batch: list[str] = []
    for k in it:
        batch.append(k)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
