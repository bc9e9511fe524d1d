"""Faults in the middle of split-brain recovery's changing steps (the fault table's cells for
fence, salvage, demote, repair-sentinels and the fence's undo; the sigkill/ctrl-c cells of
fence, salvage and demote are in test_faults_steps.py, whose setups this file reuses).

The stale primary is a replica promoted by hand that took SPLIT_KEYS writes of its own; every
Sentinel saw it as a replica first (docs/fault-table.md: else a Sentinel wipes it before the
fence). After each finish: one primary, no fence left, and every stale write on the primary
where it survived the fault (a node that dies loses its memory: the lab persists nothing).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_ha import drift
from redis_ha import facts as factsmod
from redis_ha import lock as lockmod
from redis_ha.conn import call
from redis_ha.lab import scenarios
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports

from .fault_cells import Case, fault_lab, records, run_cell
from .test_faults_steps import (
    _drop_split_keys,
    _fenced,
    _recover,
    _salvaged,
    _salvaging,
    _split_with_writes,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def sblab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from fault_lab(tmp_path_factory, "faultsplit")


def _authoritative(lab: Lab, _node: str) -> list[str]:
    """The fault's victim is the authoritative primary (the merge's target)."""
    return [lab.current_primary().name]


def _ghost_peer(lab: Lab) -> str:
    """The last Sentinel restarted knowing a peer that does not exist: repair-sentinels resets
    it (no failover needed, so the setup stays cheap). Returns the Sentinel's name."""
    s = lab.inv.sentinels[-1]
    conf = lab.conf(s.name)
    lab.stop(s.name)
    ghost = f"127.0.0.1 {free_ports(1)[0]} {secrets.token_hex(20)}"
    conf.write_text(conf.read_text() + f"sentinel known-sentinel {lab.inv.master_name} {ghost}\n")
    lab.start_sentinel(s, primary=lab.current_primary())
    return s.name


def _step_result(jdir: Path, step: str) -> str | None:
    """The result of the run's last `step-end` of `step`, None when it never ended."""
    ends = [r for r in records(jdir) if r["event"] == "step-end" and r["step"] == step]
    return ends[-1]["result"] if ends else None


def _kept_fenced(lab: Lab, node: str, jdir: Path) -> None:
    """The salvage failed and its undo left the stale primary fenced, and says so: unpaused,
    Sentinel's held REPLICAOF would wipe its unmerged writes. Then the dead authoritative
    primary comes back as a replica of the one Sentinel promoted (lab.up would wait for a
    healthy cluster, which the fenced stale primary is not)."""
    undo = [r for r in records(jdir) if r["event"] == "undo" and r["step"] == "fence"]
    assert undo and undo[-1]["result"] == "ok" and "kept fenced" in undo[-1]["message"], undo
    assert _fenced(lab, node)
    dead = next(n.name for n in lab.inv.nodes if lab.pid(n.name) is None)
    new = scenarios.wait_new_primary(lab.inv, dead, timeout=30)
    lab.start_node(lab.inv.node(dead), replicaof=lab.inv.node(new))
    _lock_expired(lab, new)


def _lock_expired(lab: Lab, primary: str, timeout: float = 45.0) -> None:
    """The dead run's lock key, replicated to the promoted node, expires (TTL 30 s): only a
    resume of that run may take it over, and this finish is a new run."""
    key = lockmod.KEY_PREFIX + lab.inv.master_name
    deadline = time.monotonic() + timeout
    while call(lab.inv, lab.inv.node(primary), "EXISTS", key):
        assert time.monotonic() < deadline, "the dead run's lock key did not expire"
        time.sleep(0.5)


def _repaired_later(lab: Lab, node: str, jdir: Path) -> None:
    """The repair never ended in the faulted run: the finish has a Sentinel to finish."""
    assert _step_result(jdir, "repair-sentinels") != "ok"


def _unmonitored(lab: Lab) -> str:
    """The last Sentinel told to forget the primary (SENTINEL REMOVE): repair-sentinels
    monitors it again with the inventory's settings. Returns the Sentinel's name."""
    s = lab.inv.sentinels[-1]
    call(lab.inv, s, "SENTINEL", "REMOVE", lab.inv.master_name)
    return s.name


def _sentinels_as_inventory(lab: Lab, _node: str) -> None:
    """Every Sentinel watches with the inventory's settings (down-after, failover-timeout...)."""
    drifts, _ = drift.find_drift(lab.inv, factsmod.gather(lab.inv))
    assert [d for d in drifts if d.target.startswith("sentinel")] == []


def _sb(setup, fault: str, code: int, must: list[str], finish: str, **kw) -> Case:  # type: ignore[no-untyped-def]
    return Case(setup, _recover, None, fault, code, must, finish, **kw)


CASES = {
    # fence: held right after its CLIENT PAUSE on the stale primary.
    ("split-brain", "fence", "ctrl-c"): _sb(
        _split_with_writes, "ctrl-c", 130, ["interrupted", "end"], "resume", hold="fence:1",
        split=True, done=_salvaged),
    # Each command is its own connection (conn.call): the cut one is not used again.
    ("split-brain", "fence", "lost-connection"): _sb(
        _split_with_writes, "lost-connection", 0, ["end"], "itself", hold="fence:1",
        split=True, done=_salvaged),
    ("split-brain", "fence", "node-dies"): _sb(
        _split_with_writes, "node-dies", 2, ["undo", "end"], "rerun", hold="fence:1"),
    # salvage: the stale primary dies right after the re-armed fence, before its export.
    ("split-brain", "salvage", "node-dies"): _sb(
        _split_with_writes, "node-dies", 1, ["undo", "end"], "rerun", hold="salvage:1"),
    # ... the authoritative primary dies (or its connection is cut) mid-merge.
    ("split-brain", "salvage", "node-dies-authoritative"): Case(
        _split_with_writes, _recover, _salvaging, "node-dies", 1, ["undo", "end"], "undo",
        victim=_authoritative, split=True, left=_kept_fenced, done=_salvaged, undo=_recover),
    # The merge's connection cut: the write is sent again on a new one (it failed the salvage,
    # and the undo unpaused the stale primary, before salvage.apply did).
    ("split-brain", "salvage", "lost-connection"): Case(
        _split_with_writes, _recover, _salvaging, "lost-connection", 0, ["end"], "itself",
        victim=_authoritative, split=True, done=_salvaged),
    # demote: held right after its REPLICAOF, before the UNPAUSE.
    ("split-brain", "demote", "lost-connection"): _sb(
        _split_with_writes, "lost-connection", 0, ["end"], "itself", hold="demote:1",
        split=True, done=_salvaged),
    ("split-brain", "demote", "node-dies"): _sb(
        _split_with_writes, "node-dies", 0, ["end"], "rerun", hold="demote:1", done=_salvaged),
    # repair-sentinels: held right after the SENTINEL RESET of a Sentinel with a ghost peer.
    ("split-brain", "repair-sentinels", "sigkill"): _sb(
        _ghost_peer, "sigkill", -9, ["apply"], "resume", hold="repair-sentinels:1",
        left=_repaired_later),
    # ... of a Sentinel that monitors nothing: held after its SENTINEL MONITOR, before the
    # SENTINEL SET of the inventory's settings (it watches with Sentinel's defaults meanwhile).
    ("split-brain", "repair-sentinels", "sigkill-after-monitor"): _sb(
        _unmonitored, "sigkill", -9, ["apply"], "resume", hold="repair-sentinels:1",
        left=_repaired_later, done=_sentinels_as_inventory),
    ("split-brain", "repair-sentinels", "ctrl-c"): _sb(
        _ghost_peer, "ctrl-c", 130, ["interrupted", "end"], "resume", hold="repair-sentinels:1",
        left=_repaired_later),
    ("split-brain", "repair-sentinels", "sentinel-hangs"): _sb(
        _ghost_peer, "sentinel-hangs", 1, ["end"], "resume", hold="repair-sentinels:1",
        left=_repaired_later),
    ("split-brain", "repair-sentinels", "lost-connection"): _sb(
        _ghost_peer, "lost-connection", 0, ["end"], "itself", hold="repair-sentinels:1"),
}  # fmt: skip


@pytest.mark.parametrize("cell", list(CASES), ids=["/".join(k) for k in CASES])
def test_fault_in_split_brain(sblab: Lab, cell: tuple[str, str, str], tmp_path: Path) -> None:
    run_cell(sblab, cell[0], CASES[cell], tmp_path, after=_drop_split_keys)
