"""Faults in the middle of changing steps other than the switch (that one has its own table in
test_faults_mid_step.py): failover.manual's steer, replica.rebuild's full sync.

Data-driven: (procedure, step, fault) -> what it leaves and how the job is finished. Every case
checks that the fault really landed mid-step (the state it changes is half-way), the exit code,
the journal, and that after the finish no node is half-configured and never two primaries.
One lab (production down-after, 3000 ms), repaired after each case. docs/fault-table.md lists
the cells.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import inventory
from redis_ha import journal as journalmod
from redis_ha.actions.failover import STEER_PRIORITY
from redis_ha.conn import client
from redis_ha.lab import faults, scenarios
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

from .conftest import ROOT, run_invoke
from .test_faults_mid_step import PrimaryWatch, _half_configured, _repair
from .test_replica_rebuild import _load, hold_full_sync_open

pytestmark = pytest.mark.lab
KEYS = 20_000
SYNC_S = 6.0  # the slowed full sync: long enough to land a fault in it


@pytest.fixture(scope="module")
def slab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    d = tmp_path_factory.mktemp("faultsteps")
    lab = Lab(inventory.load(write_lab_inventory(d, down_after_ms=3000)))
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
    midway: Callable[[Lab, str], bool]  # (lab, node): the step's change has landed
    fault: str
    code: int
    must: list[str]
    finish: str  # "resume" | "rerun"
    split: bool = False  # two primaries is the fault itself: fenced until the finish


def _priority(lab: Lab, node: str) -> int | None:
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.replica_priority if f.up else None


def _syncing(lab: Lab, node: str) -> bool:
    """Restarted by the rebuild, unpromotable, its full sync under way."""
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.up and f.role == "replica" and not f.link_up and f.replica_priority == 0


def _fenced(lab: Lab, node: str) -> bool:
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


def _steer(node: str) -> list[str]:
    return ["failover.manual", "--yes", "--to", node]


def _rebuild(node: str) -> list[str]:
    return ["replica.rebuild", "--yes", "--force", "--node", node, "--sync-timeout", "30"]


def _recover(_node: str) -> list[str]:
    return ["splitbrain.recover", "--yes"]


CASES = {
    # (procedure, step, fault): Case
    ("failover-manual", "steer", "sigkill"): Case(
        _a_replica, _steer, lambda lab, n: _priority(lab, n) == STEER_PRIORITY, "sigkill", -9,
        ["apply"], "resume"),
    ("failover-manual", "steer", "ctrl-c"): Case(
        _a_replica, _steer, lambda lab, n: _priority(lab, n) == STEER_PRIORITY, "ctrl-c", 130,
        ["interrupted", "end"], "resume"),
    ("replica-rebuild", "full-sync", "sigkill"): Case(
        _crashed_empty_replica, _rebuild, _syncing, "sigkill", -9, ["apply"], "resume"),
    ("replica-rebuild", "full-sync", "node-dies"): Case(
        _crashed_empty_replica, _rebuild, _syncing, "node-dies", 1, ["undo", "end"], "rerun"),
    # A replica promoted by hand: the tool fences it (CLIENT PAUSE 120 s) and is killed after.
    ("split-brain", "fence", "sigkill"): Case(
        scenarios.manual_promotion, _recover, _fenced, "sigkill", -9, ["apply"], "resume",
        split=True),
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
        while not case.midway(lab, node):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()[0][-3000:]
            time.sleep(0.05)
        if case.fault in ("sigkill", "ctrl-c"):
            os.killpg(p.pid, signal.SIGKILL if case.fault == "sigkill" else signal.SIGINT)
        elif case.fault == "node-dies":
            lab.stop(node, kill=True)
        out, _ = p.communicate(timeout=90)
        if case.split:  # the stale primary cannot acknowledge a write while the tool is dead
            assert _fenced(lab, node), out[-3000:]
        else:
            watch = PrimaryWatch(lab)
        assert p.returncode == case.code, out[-3000:]
        events = _events(jdir)
        assert all(e in events for e in case.must), events
        env = {journalmod.ENV_DIR: str(jdir)}
        if case.finish == "resume":  # the same command, continued from its journal
            r = run_invoke(*case.argv(node), "--resume", "latest",
                           inventory=lab.inv.path, env=env, timeout=180)  # fmt: skip
        else:
            lab.up(timeout=60)  # the dead node comes back
            r = run_invoke(*case.argv(node), inventory=lab.inv.path,
                           env=env, timeout=180)  # fmt: skip
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        watch = watch or PrimaryWatch(lab)  # split-brain: from its resolution on
        if proc == "failover-manual":
            assert lab.current_primary().name == node
        assert _half_configured(lab) == []
        assert healthmod.assess(lab.inv, factsmod.gather(lab.inv)).healthy
        longest = watch.until(time.monotonic())
        assert longest < 3.0, f"two primaries for {longest:.1f} s"
    finally:
        if watch is not None:
            watch.stop.set()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        lab.up(timeout=60)
        for ep in lab.inv.nodes:
            c = client(lab.inv, ep, timeout=2.0)
            try:
                c.config_set("rdb-key-save-delay", "0")
            finally:
                c.close()
        _repair(lab)
        lab.wait_ready(timeout=60)
