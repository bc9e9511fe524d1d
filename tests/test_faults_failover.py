"""Faults in the middle of failover.manual's steer and restore-priority steps and of
replica.rebuild's unpromotable, restart and restore steps (the switch and the full sync have
their cells in test_faults_mid_step.py and test_faults_steps.py).

Data-driven: (procedure, step, fault) -> what it leaves and how the job is finished. Most cells
hold the run with a fail point right after the step's first change (`hold`), so a fault lands
between two changes of a step that takes milliseconds. After the finish: no node at priority
0/1 or replica-announced no, a healthy cluster, never two primaries (tests/fault_cells.py), and
no steer left in a config file. One lab (production timings), repaired after each cell.
docs/fault-table.md lists the cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redis_ha import facts as factsmod
from redis_ha.actions.failover import STEER_PRIORITY
from redis_ha.conn import client
from redis_ha.lab.cluster import Lab

from .fault_cells import Case, fault_lab, records, run_cell
from .test_faults_steps import _a_replica, _priority, _rebuild, _steer, _steered

pytestmark = pytest.mark.lab
RIVAL: dict[str, str] = {}  # the replica an operator had set to priority 1 (node-dies cell)


@pytest.fixture(scope="module")
def flab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from fault_lab(tmp_path_factory, "faultsfailover", fast=True)


def _file_priority(lab: Lab, node: str) -> str | None:
    """replica-priority as the node's config file says (what a restart comes back with)."""
    for line in lab.conf(node).read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("replica-priority", "slave-priority"):
            return words[1]
    return None


def _file_steered(lab: Lab, node: str, _jdir: Path) -> None:
    """Sentinel's CONFIG REWRITE at the promotion wrote the steer into the file; the restore
    was cut before its own CONFIG REWRITE."""
    assert _file_priority(lab, node) == str(STEER_PRIORITY)


def _file_restored(lab: Lab, node: str) -> None:
    """A restart of the node comes back at the inventory's priority, not the steer."""
    assert _file_priority(lab, node) == str(lab.inv.settings.replica_priority)


def _with_rival(lab: Lab) -> str:
    """Two replicas: the first by name at priority 1 (an operator's choice, which the steer
    sets aside and restore-priority puts back first), the other the target."""
    primary = lab.current_primary().name
    rival, target = sorted(n.name for n in lab.inv.nodes if n.name != primary)
    c = client(lab.inv, lab.inv.node(rival))
    try:
        c.config_set("replica-priority", STEER_PRIORITY)
    finally:
        c.close()
    RIVAL["name"] = rival
    return target


def _rival(_lab: Lab, _node: str) -> list[str]:
    return [RIVAL["name"]]


def _rival_restored(lab: Lab, _node: str) -> None:
    """The rival is back at the operator's priority 1; then the lab's default again."""
    rival = RIVAL["name"]
    assert _priority(lab, rival) == STEER_PRIORITY
    c = client(lab.inv, lab.inv.node(rival))
    try:
        c.config_set("replica-priority", lab.inv.settings.replica_priority)
    finally:
        c.close()


def _steer_put_back(lab: Lab, node: str, jdir: Path) -> None:
    """The steer failed and put back what it set: the target at its old priority, the step's
    journal record says so."""
    assert _priority(lab, node) == lab.inv.settings.replica_priority
    end = [r for r in records(jdir) if r["event"] == "step-end" and r["step"] == "steer"]
    assert end and end[-1]["result"] == "failed", end
    assert "put back" in str(end[-1]["error"]), end[-1]


def _held_after(change: str) -> Callable[[Lab, str, Path], bool]:
    """Midway: the run holds right after `change` ("{node}" is the cell's node), as the fail
    point's marker (beside the journal) says. Anything else made the n-th change (the lock's
    refresh thread, a read taken for a change): the cell then fails instead of landing the
    fault elsewhere."""

    def held(_lab: Lab, node: str, jdir: Path) -> bool:
        marker = jdir.parent / "held"
        text = marker.read_text().strip() if marker.exists() else ""
        assert not text or text.startswith(change.format(node=node)), text
        return bool(text)

    return held


SET_PRIORITY = _held_after("CONFIG SET replica-priority")
# The restart's changes: the stop is its 1st, the start its 2nd (its guard's CONFIG GET is a
# read; the markers check which change held, so a miscount fails these cells).
STOPPED, STARTED = _held_after("stopped {node}"), _held_after("started {node}")


def _steering(lab: Lab, node: str, jdir: Path) -> bool:
    """Target at priority 1 and the steer still waiting for the Sentinels."""
    return _steered(lab, node, jdir) and not [
        r for r in records(jdir) if r["event"] == "step-end" and r["step"] == "steer"
    ]


def _first_sentinel(lab: Lab, _node: str) -> list[str]:
    return [lab.inv.sentinels[0].name]


def _sentinels(lab: Lab, _node: str) -> list[str]:
    return [s.name for s in lab.inv.sentinels]


def _unpromotable_half(lab: Lab, node: str, _jdir: Path) -> None:
    """Held after the first CONFIG SET: priority 0, still announced."""
    assert _priority(lab, node) == 0


def _down(lab: Lab, node: str, _jdir: Path) -> None:
    assert not factsmod.node_facts(lab.inv, lab.inv.node(node)).up


def _hidden_but_promotable(lab: Lab, node: str, _jdir: Path) -> None:
    """Held in the restore after the first CONFIG SET: priority back, still not announced."""
    c = client(lab.inv, lab.inv.node(node))
    try:
        cfg = c.config_get("replica-priority", "replica-announced")
    finally:
        c.close()
    assert cfg == {"replica-priority": "100", "replica-announced": "no"}, cfg


INT = ["interrupted", "end"]
# Lost connections: a fail point holds between two commands, when the step's connection is idle
# in redis-py's pool; the next command finds it closed (ConnectionPool.get_connection checks
# can_read) and reconnects, retries or not. So these cells end with exit 0 by themselves, and
# the step's later commands (a CONFIG REWRITE, the second CONFIG SET) prove they went through.
CASES = {
    # (procedure, step, fault): Case
    # The steer's wait holds one connection per Sentinel: they are cut, it reconnects.
    ("failover-manual", "steer", "lost-connection"): Case(
        _a_replica, _steer, _steering, "lost-connection", 0, ["end"], "itself",
        victim=_sentinels, primary_is_node=True),
    # The target dies right after its CONFIG SET: a Sentinel judges it down, the steer puts
    # back the others and fails; restarted, the node reads its file (never rewritten: 100).
    ("failover-manual", "steer", "node-dies"): Case(
        _a_replica, _steer, SET_PRIORITY, "node-dies", 1, ["end"], "rerun", hold="steer:1",
        primary_is_node=True),
    # The steer reads every Sentinel each poll: one hung is one it reads; it gives up after
    # STEER_SILENT_S and puts the priority back. The cluster stays as it was.
    ("failover-manual", "steer", "sentinel-hangs"): Case(
        _a_replica, _steer, SET_PRIORITY, "sentinel-hangs", 1, ["end"], "itself", hold="steer:1",
        victim=_first_sentinel, left=_steer_put_back),
    # restore-priority: held after CONFIG SET on the new primary, before its CONFIG REWRITE.
    ("failover-manual", "restore-priority", "sigkill"): Case(
        _a_replica, _steer, SET_PRIORITY, "sigkill", -9, ["apply"], "resume",
        hold="restore-priority:1", left=_file_steered, done=_file_restored, primary_is_node=True),
    ("failover-manual", "restore-priority", "ctrl-c"): Case(
        _a_replica, _steer, SET_PRIORITY, "ctrl-c", 130, INT, "resume",
        hold="restore-priority:1", left=_file_steered, done=_file_restored, primary_is_node=True),
    ("failover-manual", "restore-priority", "lost-connection"): Case(
        _a_replica, _steer, SET_PRIORITY, "lost-connection", 0, ["end"], "itself",
        hold="restore-priority:1", done=_file_restored, primary_is_node=True),
    # The rival (a replica) dies right after its priority 1 is put back, before CONFIG REWRITE.
    ("failover-manual", "restore-priority", "node-dies"): Case(
        _with_rival, _steer, SET_PRIORITY, "node-dies", 1, ["undo", "end"], "restart-resume",
        hold="restore-priority:1", victim=_rival, done=_rival_restored, primary_is_node=True),
    # replica.rebuild: unpromotable, held between priority 0 and replica-announced no.
    ("replica-rebuild", "unpromotable", "sigkill"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "sigkill", -9, ["apply"], "resume",
        hold="unpromotable:1", left=_unpromotable_half),
    ("replica-rebuild", "unpromotable", "ctrl-c"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "ctrl-c", 130, INT, "resume",
        hold="unpromotable:1", left=_unpromotable_half),
    ("replica-rebuild", "unpromotable", "lost-connection"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "lost-connection", 0, ["end"], "itself",
        hold="unpromotable:1"),
    ("replica-rebuild", "unpromotable", "node-dies"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "node-dies", 1, ["end"], "resume",
        hold="unpromotable:1"),
    # restart: held after the stop (the node down), or after the start (node-dies). The
    # step holds no Redis connection (the lab backend stops and starts by PID): no
    # lost-connection cell.
    ("replica-rebuild", "restart", "sigkill"): Case(
        _a_replica, _rebuild, STOPPED, "sigkill", -9, ["apply"], "resume", hold="restart:1",
        left=_down),
    ("replica-rebuild", "restart", "ctrl-c"): Case(
        _a_replica, _rebuild, STOPPED, "ctrl-c", 130, INT, "resume", hold="restart:1", left=_down),
    ("replica-rebuild", "restart", "node-dies"): Case(
        _a_replica, _rebuild, STARTED, "node-dies", 1, ["undo", "end"], "rerun", hold="restart:2"),
    # restore: held between replica-priority back and replica-announced yes.
    ("replica-rebuild", "restore", "sigkill"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "sigkill", -9, ["apply"], "resume", hold="restore:1",
        left=_hidden_but_promotable),
    ("replica-rebuild", "restore", "ctrl-c"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "ctrl-c", 130, INT, "resume", hold="restore:1",
        left=_hidden_but_promotable),
    ("replica-rebuild", "restore", "lost-connection"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "lost-connection", 0, ["end"], "itself",
        hold="restore:1"),
    ("replica-rebuild", "restore", "node-dies"): Case(
        _a_replica, _rebuild, SET_PRIORITY, "node-dies", 1, ["undo", "end"], "rerun",
        hold="restore:1"),
}  # fmt: skip


@pytest.mark.parametrize("cell", list(CASES), ids=["/".join(k) for k in CASES])
def test_fault_mid_step(flab: Lab, cell: tuple[str, str, str], tmp_path: Path) -> None:
    run_cell(flab, cell[0], CASES[cell], tmp_path, after=_rewrite_configs)


def _rewrite_configs(lab: Lab) -> None:
    """The inventory's priority in every live node's config file too (a cell's Sentinel may
    have rewritten a steer into one), so a later cell's restart does not bring it back."""
    lab.up(timeout=60)
    for ep in lab.inv.nodes:
        c = client(lab.inv, ep, timeout=2.0)
        try:
            c.config_set("replica-priority", lab.inv.settings.replica_priority)
            c.config_set("replica-announced", "yes")
            c.execute_command("CONFIG", "REWRITE")
        finally:
            c.close()
