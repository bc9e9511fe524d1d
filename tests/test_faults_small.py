"""Faults in the middle of the small repairs' changing steps: config-drift's converge,
memory-pressure's restore-limit (the same action, config.converge, limited to the memory
settings), writes-paused's unpause, sentinel-repair's start-down and monitor.

Every cell holds the run at a fail point (redis_ha.failpoint) right after the step's first
change, where the step has more to do on another node or Sentinel, lands the fault there, and
checks what it left, that the finish completes the job, and that nothing is left half-set:
no drifted setting (live, or in a node's config file), no writes paused, every Sentinel
monitoring with the inventory's settings and seeing the whole cluster. One lab (production
down-after, 3000 ms), repaired after each cell. docs/fault-table.md lists the cells.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from redis_ha import drift as driftmod
from redis_ha import facts as factsmod
from redis_ha.conn import client
from redis_ha.lab import faults
from redis_ha.lab.cluster import Lab

from .fault_cells import Case, fault_lab, records, run_cell
from .test_faults_steps import _a_replica

pytestmark = pytest.mark.lab
KEY, BAD = faults.DRIFT_SETTING  # min-replicas-to-write 0: the split-brain guard off
LOW_MEMORY = "1mb"  # the memory-pressure drift: far below the inventory's maxmemory
PAUSE_MS = 60_000  # the pause a crashed procedure left behind
BAD_DOWN_AFTER = "4000"  # a Sentinel's drifted down-after-milliseconds
MEMORY = "maxmemory,maxmemory-policy"  # what restore-limit converges (its playbook's `only`)


@pytest.fixture(scope="module")
def mlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from fault_lab(tmp_path_factory, "faultsmall")


# --- lab state ------------------------------------------------------------------------------


def _replicas(lab: Lab) -> list[str]:
    """The replicas in inventory order: the order a plan's operations go through the nodes."""
    primary = lab.current_primary().name
    return [n.name for n in lab.inv.nodes if n.name != primary]


def _live(lab: Lab, node: str, key: str) -> str:
    c = client(lab.inv, lab.inv.node(node), timeout=2.0)
    try:
        return str(c.config_get(key)[key])
    finally:
        c.close()


def _persist(lab: Lab, node: str, settings: dict[str, str]) -> None:
    """CONFIG SET, then CONFIG REWRITE: a hand-made change that reached the config file, as
    Sentinel's own CONFIG REWRITE of every node it reconfigures in a failover makes it."""
    c = client(lab.inv, lab.inv.node(node), timeout=2.0)
    try:
        for k, v in settings.items():
            c.config_set(k, v)
        c.execute_command("CONFIG", "REWRITE")
    finally:
        c.close()


def _file_value(lab: Lab, node: str, key: str) -> str | None:
    """The last value `key` has in the node's config file (what a restart comes back with)."""
    found = None
    for line in lab.conf(node).read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == key:
            found = " ".join(words[1:]).strip('"')
    return found


def _drifted(lab: Lab, keys: set[str] | None = None) -> list[str]:
    """Every drifted setting, live (nodes and Sentinels) or in a node's config file."""
    drifts, _ = driftmod.find_drift(lab.inv, factsmod.gather(lab.inv))
    out = [str(d) for d in drifts if keys is None or d.setting in keys]
    want = driftmod.expected_node_config(lab.inv.settings)
    for n in lab.inv.nodes:
        for k in ("min-replicas-to-write", "maxmemory"):
            if keys is not None and k not in keys:
                continue
            got = _file_value(lab, n.name, k)
            norm = driftmod.memory_bytes(got) if got and k == "maxmemory" else got
            if str(norm) != want[k]:
                out.append(f"{n.name}'s config file: {k} {got}")
    return out


def _paused(lab: Lab, node: str) -> bool:
    return factsmod.node_facts(lab.inv, lab.inv.node(node)).writes_paused is True


def _monitors(lab: Lab, sentinel: str) -> bool:
    c = client(lab.inv, lab.inv.sentinel(sentinel), timeout=1.0)
    try:
        c.execute_command("SENTINEL", "MASTER", lab.inv.master_name)
        return True
    except redis.ResponseError:
        return False
    finally:
        c.close()


def _sentinel_up(lab: Lab, sentinel: str) -> bool:
    return lab.pid(sentinel) is not None


def _sees_everything(lab: Lab, timeout: float = 20.0) -> None:
    """Every Sentinel monitors the primary with the inventory's settings and sees both replicas
    and the other Sentinels (one without the password's auth-pass never lists the replicas)."""
    deadline = time.monotonic() + timeout
    n_s, n_r = len(lab.inv.sentinels), len(lab.inv.nodes) - 1
    while True:
        f = factsmod.gather(lab.inv)
        bad = [f"{s.name}: {s.error or 'down'}" for s in f.sentinels if not s.up or s.error]
        bad += [f"{s.name} sees {s.num_replicas} replicas, {s.num_other_sentinels} Sentinels"
                for s in f.sentinels if s.up and not s.error
                and (s.num_replicas != n_r or s.num_other_sentinels != n_s - 1)]  # fmt: skip
        bad += [str(d) for d in driftmod.find_drift(lab.inv, f)[0]]
        if not bad:
            return
        assert time.monotonic() < deadline, bad
        time.sleep(0.3)


# --- setups: each returns the node (or Sentinel) the step changes first ----------------------


def _two_drifted(lab: Lab) -> str:
    """Both replicas drifted (live and in their files): the hold lands between the two."""
    for r in _replicas(lab):
        _persist(lab, r, {KEY: BAD})
    return _replicas(lab)[0]


def _node_and_sentinel_drifted(lab: Lab) -> str:
    """A replica and the last Sentinel drifted: nodes are converged first, then Sentinels."""
    node = _a_replica(lab)
    _persist(lab, node, {KEY: BAD})
    s = lab.inv.sentinels[-1]
    c = client(lab.inv, s, timeout=2.0)
    try:
        c.execute_command("SENTINEL", "SET", lab.inv.master_name, "down-after-milliseconds",
                          BAD_DOWN_AFTER)  # fmt: skip
    finally:
        c.close()
    return node


def _memory_drifted(lab: Lab) -> str:
    """maxmemory lowered on both replicas, and min-replicas-to-write on the first, which
    restore-limit must leave alone (its `only`, kept across the resume)."""
    first, second = _replicas(lab)
    _persist(lab, first, {"maxmemory": LOW_MEMORY, KEY: BAD})
    _persist(lab, second, {"maxmemory": LOW_MEMORY})
    return first


def _primary_paused(lab: Lab) -> str:
    """The primary paused (CLIENT PAUSE WRITE, 60 s), as a crashed switchover leaves it: the
    step has this one change, and the hold lands after it, before the step ends."""
    primary = lab.current_primary()
    _pause(lab, primary.name)
    return primary.name


def _replicas_paused(lab: Lab) -> str:
    """Both replicas paused (a paused replica Sentinel promotes holds every write back): the
    step unpauses them in the inventory's order; the hold lands between the two. Returns the
    first."""
    first, *_ = reps = [n.name for n in lab.inv.nodes if n.name in _replicas(lab)]
    for r in reps:
        _pause(lab, r)
    return first


def _pause(lab: Lab, node: str) -> None:
    c = client(lab.inv, lab.inv.node(node), timeout=2.0)
    try:
        c.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
    finally:
        c.close()


def _two_sentinels_down(lab: Lab) -> str:
    """The last two Sentinels stopped: the hold lands after the first is started."""
    for s in lab.inv.sentinels[1:]:
        lab.stop(s.name)
    return lab.inv.sentinels[1].name


def _sentinel_forgot(lab: Lab) -> str:
    """The last Sentinel no longer monitors the master (SENTINEL REMOVE): the hold lands
    after its SENTINEL MONITOR, before the auth-pass and the timings are set."""
    s = lab.inv.sentinels[-1]
    c = client(lab.inv, s, timeout=2.0)
    try:
        c.execute_command("SENTINEL", "REMOVE", lab.inv.master_name)
    finally:
        c.close()
    return s.name


# --- what the fault left ---------------------------------------------------------------------


def _between_replicas(lab: Lab, node: str, _jdir: Path) -> None:
    """The first replica has the inventory's value again, the second still the drifted one."""
    want = driftmod.expected_node_config(lab.inv.settings)[KEY]
    second = [r for r in _replicas(lab) if r != node][0]
    assert _live(lab, node, KEY) == want
    if lab.pid(second) is not None:  # node-dies: it died still drifted
        assert _live(lab, second, KEY) == BAD


def _sentinel_not_yet(lab: Lab, node: str, _jdir: Path) -> None:
    """The node converged; the hung Sentinel's drift is still there or queued in its socket."""
    assert _live(lab, node, KEY) == driftmod.expected_node_config(lab.inv.settings)[KEY]


def _memory_half(lab: Lab, node: str, _jdir: Path) -> None:
    want = driftmod.expected_node_config(lab.inv.settings)["maxmemory"]
    second = [r for r in _replicas(lab) if r != node][0]
    assert _live(lab, node, "maxmemory") == want
    assert _live(lab, second, "maxmemory") == str(driftmod.memory_bytes(LOW_MEMORY))


def _unpaused_unended(lab: Lab, node: str, jdir: Path) -> None:
    """The UNPAUSE went through; the step never ended (the fault landed inside it)."""
    assert not _paused(lab, node)
    ended = [r for r in records(jdir) if r["event"] == "step-end" and r["step"] == "unpause"]
    assert all(r["result"] == "interrupted" for r in ended), ended


def _one_started(lab: Lab, node: str, _jdir: Path) -> None:
    assert _sentinel_up(lab, node)
    assert not _sentinel_up(lab, lab.inv.sentinels[-1].name)


def _monitoring_unconfigured(lab: Lab, node: str, _jdir: Path) -> None:
    """It monitors again, with Sentinel's defaults: the step's SENTINEL SETs never ran."""
    assert _monitors(lab, node)
    c = client(lab.inv, lab.inv.sentinel(node), timeout=2.0)
    try:
        master = c.sentinel_master(lab.inv.master_name)
    finally:
        c.close()
    assert str(master["down-after-milliseconds"]) != str(lab.inv.settings.down_after_ms)


def _failed_naming(
    step: str, who: Callable[[Lab, str], list[str]], *also: Callable[[Lab, str, Path], None]
) -> Callable[[Lab, str, Path], None]:
    """The journal's `step` ended failed, naming what the fault hit (then the `also` checks)."""

    def left(lab: Lab, node: str, jdir: Path) -> None:
        ends = [r for r in records(jdir) if r["event"] == "step-end" and r["step"] == step]
        assert ends and ends[-1]["result"] == "failed", ends
        assert all(n in (ends[-1].get("error") or "") for n in who(lab, node)), ends[-1]
        for check in also:
            check(lab, node, jdir)

    return left


def _node(_lab: Lab, node: str) -> list[str]:
    return [node]


# --- what the finish must leave --------------------------------------------------------------


def _no_drift(lab: Lab, _node: str) -> None:
    assert _drifted(lab) == [], _drifted(lab)


def _memory_back_guard_kept(lab: Lab, node: str) -> None:
    """The memory settings back (live and in the files); the other drift left alone."""
    assert _drifted(lab, set(MEMORY.split(","))) == []
    assert _live(lab, node, KEY) == BAD


def _nothing_paused(lab: Lab, _node: str) -> None:
    assert [n.name for n in lab.inv.nodes if _paused(lab, n.name)] == []


def _sentinels_whole(lab: Lab, _node: str) -> None:
    _sees_everything(lab)


# --- the procedures --------------------------------------------------------------------------


def _converge(_node: str) -> list[str]:
    return ["config.converge", "--yes"]


def _relieve(_node: str) -> list[str]:
    return ["memory.relieve", "--yes"]


def _unpause(_node: str) -> list[str]:
    return ["writes.unpause", "--yes"]


def _repair(_node: str) -> list[str]:
    return ["sentinel.repair", "--yes"]


def _second_replica(lab: Lab, node: str) -> list[str]:
    return [r for r in _replicas(lab) if r != node]


def _last_sentinel(lab: Lab, _node: str) -> list[str]:
    return [lab.inv.sentinels[-1].name]


def _first_sentinel(lab: Lab, _node: str) -> list[str]:
    return [lab.inv.sentinels[0].name]


INT = ["interrupted", "end"]
CASES = {
    # (procedure, step, fault): Case
    ("config-drift", "converge", "sigkill"): Case(
        _two_drifted, _converge, None, "sigkill", -9, ["apply"], "resume",
        hold="converge:1", left=_between_replicas, done=_no_drift),
    ("config-drift", "converge", "ctrl-c"): Case(
        _two_drifted, _converge, None, "ctrl-c", 130, INT, "resume",
        hold="converge:1", left=_between_replicas, done=_no_drift),
    # The hold is inside the command's connection: the cut lands on it; the next reconnects.
    ("config-drift", "converge", "lost-connection"): Case(
        _two_drifted, _converge, None, "lost-connection", 0, ["end"], "itself",
        hold="converge:1", done=_no_drift),
    # The replica not yet converged dies: it comes back from its file, which says 0.
    ("config-drift", "converge", "node-dies"): Case(
        _two_drifted, _converge, None, "node-dies", 1, ["end"], "rerun",
        hold="converge:1", victim=_second_replica,
        left=_failed_naming("converge", _second_replica, _between_replicas), done=_no_drift),
    ("config-drift", "converge", "sentinel-hangs"): Case(
        _node_and_sentinel_drifted, _converge, None, "sentinel-hangs", 1, ["end"], "rerun",
        hold="converge:1", victim=_last_sentinel,
        left=_failed_naming("converge", _last_sentinel, _sentinel_not_yet), done=_no_drift),
    ("memory-pressure", "restore-limit", "sigkill"): Case(
        _memory_drifted, _relieve, None, "sigkill", -9, ["apply"], "resume",
        hold="restore-limit:1", left=_memory_half, done=_memory_back_guard_kept),
    ("writes-paused", "unpause", "sigkill"): Case(
        _primary_paused, _unpause, None, "sigkill", -9, ["apply"], "resume",
        hold="unpause:1", left=_unpaused_unended, done=_nothing_paused),
    ("writes-paused", "unpause", "ctrl-c"): Case(
        _primary_paused, _unpause, None, "ctrl-c", 130, INT, "resume",
        hold="unpause:1", left=_unpaused_unended, done=_nothing_paused),
    ("writes-paused", "unpause", "lost-connection"): Case(
        _primary_paused, _unpause, None, "lost-connection", 0, ["end"], "itself",
        hold="unpause:1", done=_nothing_paused),
    # Two paused replicas, the second dies before its UNPAUSE: it comes back (empty) unpaused.
    ("writes-paused", "unpause", "node-dies"): Case(
        _replicas_paused, _unpause, None, "node-dies", 1, ["end"], "rerun",
        hold="unpause:1", victim=_second_replica,
        left=_failed_naming("unpause", _second_replica), done=_nothing_paused),
    ("sentinel-repair", "start-down", "sigkill"): Case(
        _two_sentinels_down, _repair, None, "sigkill", -9, ["apply"], "resume",
        hold="start-down:1", left=_one_started, done=_sentinels_whole),
    ("sentinel-repair", "start-down", "ctrl-c"): Case(
        _two_sentinels_down, _repair, None, "ctrl-c", 130, INT, "resume",
        hold="start-down:1", left=_one_started, done=_sentinels_whole),
    # The Sentinel just started hangs: the verify names it; after it wakes, TILT is waited out.
    ("sentinel-repair", "start-down", "sentinel-hangs"): Case(
        _two_sentinels_down, _repair, None, "sentinel-hangs", 1, ["end"], "again",
        hold="start-down:1", left=_failed_naming("start-down", _node), done=_sentinels_whole),
    # A second Sentinel, the one that was up, dies mid-repair: the same command starts it.
    ("sentinel-repair", "start-down", "node-dies"): Case(
        _two_sentinels_down, _repair, None, "node-dies", 1, ["end"], "again",
        hold="start-down:1", victim=_first_sentinel,
        left=_failed_naming("start-down", _first_sentinel), done=_sentinels_whole),
    ("sentinel-repair", "monitor", "sigkill"): Case(
        _sentinel_forgot, _repair, None, "sigkill", -9, ["apply"], "resume",
        hold="monitor:1", left=_monitoring_unconfigured, done=_sentinels_whole),
    ("sentinel-repair", "monitor", "ctrl-c"): Case(
        _sentinel_forgot, _repair, None, "ctrl-c", 130, INT, "resume",
        hold="monitor:1", left=_monitoring_unconfigured, done=_sentinels_whole),
    # Each command has its own connection: a cut one is gone when the next is sent.
    ("sentinel-repair", "monitor", "lost-connection"): Case(
        _sentinel_forgot, _repair, None, "lost-connection", 0, ["end"], "itself",
        hold="monitor:1", done=_sentinels_whole),
    ("sentinel-repair", "monitor", "sentinel-hangs"): Case(
        _sentinel_forgot, _repair, None, "sentinel-hangs", 1, ["end"], "again",
        hold="monitor:1", left=_failed_naming("monitor", _node), done=_sentinels_whole),
    # The Sentinel being configured dies: it restarts from the file it wrote at MONITOR.
    ("sentinel-repair", "monitor", "node-dies"): Case(
        _sentinel_forgot, _repair, None, "node-dies", 1, ["end"], "again",
        hold="monitor:1", left=_failed_naming("monitor", _node), done=_sentinels_whole),
}  # fmt: skip


@pytest.mark.parametrize("cell", list(CASES), ids=["/".join(k) for k in CASES])
def test_fault_mid_small_step(mlab: Lab, cell: tuple[str, str, str], tmp_path: Path) -> None:
    run_cell(mlab, cell[0], CASES[cell], tmp_path, after=_settings_back)


def _settings_back(lab: Lab) -> None:
    """What a failed cell may leave for the next: drifted settings (live and in the files),
    a Sentinel that does not monitor the master or has drifted timings."""
    lab.up(timeout=60)
    want = driftmod.expected_node_config(lab.inv.settings)
    for n in lab.inv.nodes:
        with contextlib.suppress(redis.RedisError):
            _persist(lab, n.name, {k: want[k] for k in ("maxmemory", "maxmemory-policy", KEY)})
    s = lab.inv.settings
    primary = lab.current_primary()
    for sen in lab.inv.sentinels:
        c = client(lab.inv, sen, timeout=2.0)
        try:
            m = lab.inv.master_name
            if not _monitors(lab, sen.name):
                c.execute_command("SENTINEL", "MONITOR", m, primary.host, primary.port, s.quorum)
            c.execute_command("SENTINEL", "SET", m, "auth-pass", lab.inv.password() or "")
            for k, v in driftmod.expected_sentinel_config(s).items():
                if k != "quorum":
                    c.execute_command("SENTINEL", "SET", m, k, v)
        except redis.RedisError:
            pass
        finally:
            c.close()
