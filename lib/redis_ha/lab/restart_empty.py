"""Drill: the primary's process restarts empty before Sentinel notices (issue 8).

Loads keys, optionally runs a writer at a fixed rate, SIGKILLs the primary and starts it again
`delay` seconds later the way a platform restart policy would, with or without the safestart
wrapper, then reports the keys on every node before and after and which acknowledged writes
survived. Without the wrapper every node ends with nothing; with it nothing acknowledged is lost.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from redis_ha import facts as factsmod
from redis_ha.conn import client
from redis_ha.control import starts_safely
from redis_ha.errors import LabError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.safestart import named_primary

LOAD_PREFIX = "drill:restart:"
WRITE_PREFIX = "drill:w:"


@dataclass
class Writer:
    """A paced writer that follows the Sentinels' primary and records every acknowledged SET."""

    inv: Inventory
    rate: int = 1000
    acked: list[tuple[int, float]] = field(default_factory=list)  # (seq, monotonic ack time)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def primary(self) -> Endpoint | None:
        """The node a majority of the Sentinels names (None while they do not agree)."""
        addr = named_primary(self.inv)
        if addr is None:
            return None
        host, _, port = addr.rpartition(":")
        return self.inv.node_by_address(host, port)

    def run(self) -> None:
        seq, conn = 0, None
        interval = 1.0 / self.rate
        next_t = time.monotonic()
        while not self._stop.is_set():
            if conn is None:
                ep = self.primary()
                if ep is None:
                    time.sleep(0.05)
                    continue
                conn = client(self.inv, ep, timeout=0.5)
            seq += 1
            try:
                conn.set(f"{WRITE_PREFIX}{seq}", seq)
                self.acked.append((seq, time.monotonic()))
            except redis.RedisError:
                self.errors += 1
                conn.close()
                conn = None
                time.sleep(0.05)
            next_t += interval
            pause = next_t - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_t = time.monotonic()
        if conn is not None:
            conn.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="drill-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def longest_gap(self) -> float:
        times = [t for _, t in self.acked]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


@dataclass
class NodeCount:
    name: str
    role: str | None
    keys: int | None
    loaded: int | None  # how many of the drill's loaded keys this node holds


@dataclass
class DrillResult:
    node: str
    wrapper: bool
    loaded: int
    before: list[NodeCount]
    after: list[NodeCount]
    sentinels_before: list[str | None]
    sentinels_after: list[str | None]
    restart_s: float
    healthy_after: bool
    problems: list[str]
    decision: str | None = None
    writes_acked: int = 0
    writes_acked_before_marker: int = 0
    lost_before_marker: int = 0
    lost_after_marker: int = 0
    write_errors: int = 0
    longest_gap_s: float = 0.0
    app: dict[str, Any] | None = None  # the app simulator's figures (redis_ha.lab.traffic)

    @property
    def lost(self) -> bool:
        """Keys were lost: some loaded key, or an acknowledged write replicated before the kill."""
        best = max((c.loaded or 0 for c in self.after), default=0)
        return best < self.loaded or self.lost_before_marker > 0

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["lost"] = self.lost
        return d


def count(inv: Inventory) -> tuple[list[NodeCount], list[str | None]]:
    """Role, key count and loaded-key count of every node; each Sentinel's primary."""
    facts = factsmod.gather(inv, timeout=1.0, detail=False)
    out = []
    for n, f in zip(inv.nodes, facts.nodes, strict=True):
        loaded = None
        if f.up:
            c = client(inv, n, timeout=2.0)
            try:
                loaded = sum(1 for _ in c.scan_iter(match=f"{LOAD_PREFIX}*", count=1000))
            except redis.RedisError:
                loaded = None
            finally:
                c.close()
        out.append(NodeCount(n.name, f.role, f.keys, loaded))
    return out, [s.primary_name for s in facts.sentinels]


def _last_decision(lab: Lab, name: str) -> str | None:
    try:
        lines = (lab.proc_dir(name) / "stdout.log").read_text().splitlines()
    except OSError:
        return None
    found = [ln for ln in lines if ln.startswith("safestart:")]
    return found[-1] if found else None


def run(
    lab: Lab,
    *,
    node: str | None = None,
    keys: int = 5000,
    delay: float = 0.3,
    wrapper: bool | None = None,
    rate: int = 0,
    simulator: bool = False,
    settle_s: float = 30.0,
) -> DrillResult:
    """Run the drill on a healthy lab; the lab is left running (healthy unless data was lost)."""
    inv = lab.inv
    lab.wait_ready(timeout=30)
    target = inv.node(node) if node else lab.current_primary()
    use_wrapper = starts_safely(inv, target) if wrapper is None else wrapper
    c = client(inv, target, timeout=5.0)
    try:
        c.flushall()
        for start in range(0, keys, 1000):
            p = c.pipeline(transaction=False)
            for i in range(start, min(keys, start + 1000)):
                p.set(f"{LOAD_PREFIX}{i}", i)
            p.execute()
        c.execute_command("WAIT", len(inv.nodes) - 1, 5000)
    finally:
        c.close()
    writer = Writer(inv, rate=rate) if rate > 0 and not simulator else None
    app = None
    if rate > 0 and simulator:
        from redis_ha.lab.traffic import Traffic

        app = Traffic(inv, rate=rate, client="recommended", keys=2000).start()
    if writer:
        writer.start()
    if writer or app:
        time.sleep(1.0)
    before, s_before = count(inv)
    marker_t = time.monotonic()
    if writer:
        # Everything acknowledged before this WAIT returned is in every replica: the writes the
        # acceptance says must survive. Writes acked in the few ms after may legitimately be lost.
        c = client(inv, target, timeout=2.0)
        try:
            c.execute_command("WAIT", len(inv.nodes) - 1, 1000)
            marker_t = time.monotonic()
        finally:
            c.close()
    t0 = time.monotonic()
    lab.signal(target.name, signal.SIGKILL)
    pid_gone = time.monotonic() + 5
    while lab.pid(target.name) is not None and time.monotonic() < pid_gone:
        time.sleep(0.01)
    time.sleep(delay)
    lab.start_node(target, safe=use_wrapper)
    restart_s = time.monotonic() - t0
    problems: list[str] = []
    healthy = True
    try:
        lab.wait_ready(timeout=settle_s)
    except LabError as e:
        healthy, problems = False, [str(e)]
    if writer or app:
        time.sleep(1.0)  # writes resume against whatever primary the Sentinels name now
    if writer:
        writer.stop()
    report = app.stop().to_dict() if app else None
    after, s_after = count(inv)
    res = DrillResult(
        node=target.name,
        wrapper=use_wrapper,
        loaded=keys,
        before=before,
        after=after,
        sentinels_before=s_before,
        sentinels_after=s_after,
        restart_s=round(restart_s, 2),
        healthy_after=healthy,
        problems=problems,
        decision=_last_decision(lab, target.name) if use_wrapper else None,
    )
    if writer:
        _check_acked(lab, writer, marker_t, res)
    if report:
        keep = ("acked_writes", "missing_writes", "missing_keys", "write_stall_s", "failed")
        res.app = {k: report[k] for k in (*keep, "errors", "hit_rate")}
    return res


def _check_acked(lab: Lab, writer: Writer, marker_t: float, res: DrillResult) -> None:
    """Which acknowledged writes the primary still has, split at the replication marker."""
    ep = writer.primary() or lab.current_primary()
    c = client(lab.inv, ep, timeout=5.0)
    try:
        p = c.pipeline(transaction=False)
        for seq, _ in writer.acked:
            p.exists(f"{WRITE_PREFIX}{seq}")
        present = p.execute()
    finally:
        c.close()
    res.writes_acked = len(writer.acked)
    res.write_errors = writer.errors
    res.longest_gap_s = round(writer.longest_gap(), 2)
    for (_, t), ok in zip(writer.acked, present, strict=True):
        early = t <= marker_t
        res.writes_acked_before_marker += early
        if not ok:
            if early:
                res.lost_before_marker += 1
            else:
                res.lost_after_marker += 1
