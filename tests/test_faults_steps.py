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

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from redis_ha import appconfig, inventory
from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import journal as journalmod
from redis_ha.actions.failover import STEER_PRIORITY
from redis_ha.appconfig import envfile
from redis_ha.conn import CLIENT_NAME, call, client
from redis_ha.lab import faults, scenarios
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

from .conftest import ROOT, run_invoke
from .test_faults_mid_step import TWO_PRIMARIES_MAX_S, PrimaryWatch, _half_configured, _repair
from .test_replica_rebuild import _load, hold_full_sync_open

pytestmark = pytest.mark.lab
KEYS = 20_000
SYNC_S = 6.0  # the slowed full sync: long enough to land a fault in it
SPLIT_KEYS = 20_000  # written on the stale primary: what the salvage must carry over
HOLD = "hold-redeploy"  # present: the app's restart command holds once


@pytest.fixture(scope="module")
def slab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    d = tmp_path_factory.mktemp("faultsteps")
    path = write_lab_inventory(d, down_after_ms=3000)
    data = yaml.safe_load(path.read_text())
    # The app's restart (the rollback's redeploy) holds 30 s once when HOLD is there, its pid in
    # HOLD.pid: a fault lands after the config switch and before the app runs on it.
    h = shlex.quote(str(d / HOLD))
    held = f"rm -f {h}; echo $$ > {h}.pid; exec sleep 30"
    data["app"]["restart_cmd"] = f"sh -c 'if [ -e {h} ]; then {held}; fi'"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    lab = Lab(inventory.load(path))
    try:
        lab.up(timeout=60)
        _load(lab.inv, lab.current_primary(), KEYS)
        yield lab
    finally:
        lab.down()


@dataclass
class Case:
    """One cell: how to start the procedure against `node`, what shows the step is half-way,
    the fault, the exit code and journal events it must leave, and how the job is finished."""

    setup: Callable[[Lab], str]  # prepares the lab; the node the procedure works on
    argv: Callable[[str], list[str]]  # (node) -> task and arguments
    midway: Callable[[Lab, str, Path], bool]  # (lab, node, journal dir): the step is half-way
    fault: str
    code: int
    must: list[str]
    finish: str  # "resume" | "rerun" | "itself" | "undo" (run `undo`)
    split: bool = False  # two primaries is the fault itself: fenced until the finish
    left: Callable[[Lab, str, Path], None] | None = None  # asserts what the fault left
    done: Callable[[Lab, str], None] | None = None  # asserts the finished job
    undo: Callable[[str], list[str]] | None = None  # the finish when it is "undo"


def _priority(lab: Lab, node: str) -> int | None:
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.replica_priority if f.up else None


def _steered(lab: Lab, node: str, _jdir: Path) -> bool:
    return _priority(lab, node) == STEER_PRIORITY


def _syncing(lab: Lab, node: str, _jdir: Path | None = None) -> bool:
    """Restarted by the rebuild, unpromotable, its full sync under way."""
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.up and f.role == "replica" and not f.link_up and f.replica_priority == 0


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


def _step_now(jdir: Path) -> str | None:
    """The step the run's journal last started, None before the first."""
    runs = journalmod.runs(jdir)
    recs = journalmod.read(runs[-1]) if runs else []
    return next((r["step"] for r in reversed(recs) if r["event"] == "step-start"), None)


def _no_writes(lab: Lab, node: str) -> bool:
    """The stale primary cannot acknowledge a write: still fenced, or already a replica."""
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.up and (f.writes_paused is True or f.role == "replica")


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
    return _step_now(jdir) == "salvage" and any(jdir.glob(f"salvage-{node}-*.jsonl"))


def _demoting(lab: Lab, node: str, jdir: Path) -> bool:
    """The demote's apply has begun: REPLICAOF, UNPAUSE and CLIENT KILL take milliseconds, so
    the fault lands just before the REPLICAOF, between it and the unfence, or in the verify."""
    runs = journalmod.runs(jdir)
    last = journalmod.read(runs[-1])[-1:] if runs else []
    return bool(last) and last[0]["event"] == "apply" and last[0]["step"] == "demote"


def _demote_cut(lab: Lab, node: str, jdir: Path) -> None:
    """The fault landed inside the demote (it never ended) and left no acknowledging primary."""
    recs = journalmod.read(journalmod.runs(jdir)[-1])
    assert not [r for r in recs if r["event"] == "step-end" and r["step"] == "demote"]
    assert _no_writes(lab, node)


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
    return mode == appconfig.SINGLE and _held_pid(lab) is not None


def _held_pid(lab: Lab) -> int | None:
    """The pid of the app's held restart, once it has started."""
    try:
        return int((lab.inv.path.parent / f"{HOLD}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


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


def _kill_tool_connections(lab: Lab, node: str) -> int:
    """CLIENT KILL every connection the tool has to `node` (named as ours, not this one)."""
    c = client(lab.inv, lab.inv.node(node))
    try:
        ids = [cl["id"] for cl in c.client_list()
               if cl.get("name") == CLIENT_NAME and cl.get("cmd") != "client|list"]  # fmt: skip
        for i in ids:
            c.client_kill_filter(_id=i)
        return len(ids)
    finally:
        c.close()


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
        _crashed_empty_replica, _rebuild, _syncing, "sigkill", -9, ["apply"], "resume"),
    ("replica-rebuild", "full-sync", "ctrl-c"): Case(
        _crashed_empty_replica, _rebuild, _syncing, "ctrl-c", 130, ["interrupted", "end"],
        "resume"),
    # The connection the sync wait holds to the rebuilt replica is cut: it reconnects.
    ("replica-rebuild", "full-sync", "lost-connection"): Case(
        _crashed_empty_replica, _rebuild, _syncing, "lost-connection", 0, ["end"], "itself"),
    ("replica-rebuild", "full-sync", "node-dies"): Case(
        _crashed_empty_replica, _rebuild, _syncing, "node-dies", 1, ["undo", "end"], "rerun"),
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
        split=True, left=_demote_cut, done=_salvaged),
    ("split-brain", "demote", "ctrl-c"): Case(
        _split_with_writes, _recover, _demoting, "ctrl-c", 130, ["interrupted", "end"],
        "resume", split=True, left=_demote_cut, done=_salvaged),
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


def _start(lab: Lab, jdir: Path, argv: list[str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "invoke", *argv, "--inventory", str(lab.inv.path)]
    env = {**os.environ, journalmod.ENV_DIR: str(jdir), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _events(jdir: Path) -> list[str]:
    return [r["event"] for r in journalmod.read(journalmod.runs(jdir)[-1])]


@pytest.mark.parametrize("cell", list(CASES), ids=["/".join(k) for k in CASES])
def test_fault_mid_step(slab: Lab, cell: tuple[str, str, str], tmp_path: Path) -> None:
    proc, _step, _ = cell
    case = CASES[cell]
    lab = slab
    node = case.setup(lab)
    jdir = tmp_path / "journal"
    p = _start(lab, jdir, case.argv(node))
    watch: PrimaryWatch | None = None
    try:
        deadline = time.monotonic() + 60
        while not case.midway(lab, node, jdir):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()[0][-3000:]
            time.sleep(0.01)
        if case.fault in ("sigkill", "ctrl-c"):
            os.killpg(p.pid, signal.SIGKILL if case.fault == "sigkill" else signal.SIGINT)
        elif case.fault == "node-dies":
            lab.stop(node, kill=True)
        elif case.fault == "lost-connection":  # lands only on a connection the tool holds
            cut = 0
            while not cut and time.monotonic() < deadline:
                cut = _kill_tool_connections(lab, node)
            assert cut, "the tool held no connection to cut"
        out, _ = p.communicate(timeout=90)
        if case.split:  # the stale primary cannot acknowledge a write while the tool is dead
            assert _no_writes(lab, node), out[-3000:]
        else:
            watch = PrimaryWatch(lab)
        assert p.returncode == case.code, out[-3000:]
        events = _events(jdir)
        assert all(e in events for e in case.must), events
        if case.left:
            case.left(lab, node, jdir)
        env = {journalmod.ENV_DIR: str(jdir)}
        r = None
        if case.finish == "resume":  # the same command, continued from its journal
            r = run_invoke(*case.argv(node), "--resume", "latest",
                           inventory=lab.inv.path, env=env, timeout=180)  # fmt: skip
        elif case.finish == "undo":
            assert case.undo is not None
            r = run_invoke(*case.undo(node), inventory=lab.inv.path, env=env,
                           timeout=180)  # fmt: skip
        elif case.finish == "rerun":
            lab.up(timeout=60)  # the dead node comes back
            r = run_invoke(*case.argv(node), inventory=lab.inv.path,
                           env=env, timeout=180)  # fmt: skip
        if r is not None:
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        watch = watch or PrimaryWatch(lab)  # split-brain: from its resolution on
        if proc in ("failover-manual", "rollback"):  # switched to it / left as it was
            assert lab.current_primary().name == node
        if case.done:
            case.done(lab, node)
        assert _half_configured(lab) == []
        assert healthmod.assess(lab.inv, factsmod.gather(lab.inv)).healthy
        longest = watch.until(time.monotonic())
        assert longest < TWO_PRIMARIES_MAX_S, f"two primaries for {longest:.1f} s"
    finally:
        if watch is not None:
            watch.stop.set()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        held = _held_pid(lab)
        if held is not None:  # the app's restart runs in its own session: it outlives the tool
            with contextlib.suppress(ProcessLookupError):
                os.kill(held, signal.SIGKILL)
            (lab.inv.path.parent / f"{HOLD}.pid").unlink()
        lab.up(timeout=60)
        for ep in lab.inv.nodes:
            c = client(lab.inv, ep, timeout=2.0)
            try:
                c.config_set("rdb-key-save-delay", "0")
                if c.info("replication").get("role") == "master":  # the stale side's writes
                    for batch in _batches(c.scan_iter("split:*", count=5000)):
                        c.unlink(*batch)
            finally:
                c.close()
        _repair(lab)
        lab.wait_ready(timeout=60)


def _batches(it: Iterator[str], n: int = 5000) -> Iterator[list[str]]:
    batch: list[str] = []
    for k in it:
        batch.append(k)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
