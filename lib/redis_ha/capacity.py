"""Capacity: memory against maxmemory, keys, evictions, fragmentation, hit rate, and whether the
replication backlog would survive a replica's short disconnect.

Two fact sweeps `window_s` apart give the primary's write rate (its replication offset grows by
every byte it sends to replicas). A replica that reconnects within the backlog's span resumes
with a partial resync; beyond it the primary sends a full copy (a fork, the whole dataset over
the network, the replica empty until it arrives). So the question "will a 10 s disconnect force a
full resync?" is `repl_backlog_size < write rate * 10 s`.

The sprint plan's rule "scale down memory if below 80% utilization" becomes a recommendation:
below 80% of maxmemory, the smallest maxmemory that keeps the node's peak under 80%; above it,
memory pressure. Pure (`assess`), tested from data; figures are the nodes' own INFO.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_ha.facts import ClusterFacts, NodeFacts
from redis_ha.inventory import Inventory

TARGET_UTILIZATION = 0.8
DISCONNECT_S = 10.0
STEP = 64 * 2**20  # recommendations in 64 MB steps
GIB = 2**30


@dataclass
class NodeCapacity:
    name: str
    up: bool
    role: str | None
    used_memory: int | None
    used_memory_peak: int | None
    used_memory_rss: int | None
    maxmemory: int | None
    utilization: float | None  # used_memory / maxmemory (None without a limit)
    keys: int | None
    evicted_keys: int | None
    fragmentation: float | None
    hit_rate: float | None  # since the node started
    backlog_bytes: int | None
    write_rate_bps: float | None  # primary only: replication bytes per second over the window
    backlog_covers_s: float | None
    full_resync_after_disconnect: bool | None


@dataclass
class Capacity:
    window_s: float
    disconnect_s: float
    nodes: list[NodeCapacity]
    recommendations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(v: float | None) -> int | None:
    return None if v is None else int(v)


def recommended_maxmemory(peak: int) -> int:
    """The smallest 64 MB multiple that keeps `peak` at or under the target utilization."""
    return max(STEP, math.ceil(peak / TARGET_UTILIZATION / STEP) * STEP)


def human_bytes(b: float | None) -> str:
    """'512 B', '12 KB', '384 MB', '1.00 GB'; '-' for no figure."""
    if b is None:
        return "-"
    for unit, size in (("B", 1), ("KB", 2**10), ("MB", 2**20)):
        if b < size * 1024:
            return f"{b / size:.0f} {unit}"
    return f"{b / GIB:.2f} GB"


def hit_rate_since_start(stats: dict[str, float]) -> float | None:
    """keyspace hits / (hits + misses) from INFO's counters; None before the first read."""
    hits, misses = stats.get("keyspace_hits"), stats.get("keyspace_misses")
    if hits is None or misses is None or hits + misses == 0:
        return None
    return round(hits / (hits + misses), 4)


def node_capacity(
    n: NodeFacts, before: NodeFacts | None, window_s: float, disconnect_s: float
) -> NodeCapacity:
    st = n.stats
    rate: float | None = None
    if n.role == "master" and before is not None and before.offset is not None and n.offset:
        rate = max(0.0, (n.offset - before.offset) / window_s) if window_s > 0 else None
    backlog = _int(st.get("repl_backlog_size"))
    covers = None
    resync = None
    if rate is not None and backlog is not None:
        covers = round(backlog / rate, 1) if rate > 0 else math.inf
        resync = rate * disconnect_s > backlog
    mx = n.maxmemory
    return NodeCapacity(
        name=n.name,
        up=n.up,
        role=n.role,
        used_memory=n.used_memory,
        used_memory_peak=_int(st.get("used_memory_peak")),
        used_memory_rss=_int(st.get("used_memory_rss")),
        maxmemory=mx,
        utilization=round(n.used_memory / mx, 4) if mx and n.used_memory is not None else None,
        keys=n.keys,
        evicted_keys=_int(st.get("evicted_keys")),
        fragmentation=st.get("mem_fragmentation_ratio"),
        hit_rate=hit_rate_since_start(st),
        backlog_bytes=backlog,
        write_rate_bps=None if rate is None else round(rate, 1),
        backlog_covers_s=covers,
        full_resync_after_disconnect=resync,
    )


def assess(
    inv: Inventory,
    before: ClusterFacts,
    after: ClusterFacts,
    *,
    disconnect_s: float = DISCONNECT_S,
) -> Capacity:
    """Per-node figures from the second sweep; rates from the difference between the two."""
    window = max(0.0, after.taken_at - before.taken_at)
    prev = {n.name: n for n in before.nodes if n.up}
    nodes = [node_capacity(n, prev.get(n.name), window, disconnect_s) for n in after.nodes]
    cap = Capacity(window_s=round(window, 3), disconnect_s=disconnect_s, nodes=nodes)
    cap.recommendations = recommendations(inv, cap)
    return cap


def recommendations(inv: Inventory, cap: Capacity) -> list[str]:
    """What to change, in plain words (nothing when there is nothing to say)."""
    out: list[str] = []
    up = [n for n in cap.nodes if n.up]
    limited = [n for n in up if n.maxmemory]
    if up and not limited:
        out.append(
            "no node has a maxmemory limit: set settings.maxmemory so memory pressure is "
            "visible (and the 80% rule can be applied)"
        )
    if limited:
        peak = max((n.used_memory_peak or n.used_memory or 0) for n in limited)
        mx = max(n.maxmemory or 0 for n in limited)
        worst = max((n.utilization or 0) for n in limited)
        if worst > TARGET_UTILIZATION:
            out.append(
                f"memory pressure: a node uses {worst:.0%} of maxmemory {human_bytes(mx)} "
                f"(policy {inv.settings.maxmemory_policy}); raise maxmemory and the service's "
                "memory, or find what grew"
            )
        elif peak / mx < TARGET_UTILIZATION:
            rec = recommended_maxmemory(peak)
            if rec < mx:
                out.append(
                    f"below {TARGET_UTILIZATION:.0%} utilization (peak {human_bytes(peak)} of "
                    f"{human_bytes(mx)}): maxmemory {human_bytes(rec)} would keep the peak under "
                    f"{TARGET_UTILIZATION:.0%}; size every node alike (any replica may be "
                    "promoted) and leave room for the replication fork and client buffers"
                )
    for n in up:
        if n.evicted_keys:
            out.append(f"{n.name} evicted {n.evicted_keys} keys since it started: sessions lost")
        if n.fragmentation is not None and n.fragmentation > 1.5 and (n.used_memory or 0) > 2**26:
            out.append(f"{n.name}: fragmentation {n.fragmentation:.2f} (RSS well above data)")
        if n.full_resync_after_disconnect:
            need = recommended_backlog(n.write_rate_bps or 0, cap.disconnect_s)
            out.append(
                f"{n.name}: the replication backlog ({human_bytes(n.backlog_bytes or 0)}) holds "
                f"{n.backlog_covers_s} s of writes at {human_bytes(n.write_rate_bps or 0)}/s: a "
                f"{cap.disconnect_s:.0f} s disconnect forces a full resync; set "
                f"repl-backlog-size to at least {human_bytes(need)}"
            )
    return out


def recommended_backlog(rate_bps: float, disconnect_s: float) -> int:
    """Twice the bytes written during the disconnect, in MB steps (at least 1 MB)."""
    return max(2**20, math.ceil(rate_bps * disconnect_s * 2 / 2**20) * 2**20)
