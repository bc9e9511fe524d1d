"""Config drift: live settings of every node and Sentinel against the inventory (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from redis_ha.facts import ClusterFacts
from redis_ha.inventory import Inventory, Settings

_UNITS = {"b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


@dataclass
class Drift:
    target: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.target}: {self.setting} is {self.actual!r}, inventory says {self.expected!r}"


def memory_bytes(v: str) -> int:
    """'2gb' -> 2147483648, as Redis parses it."""
    v = v.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if v.endswith(unit) and v[: -len(unit)].isdigit():
            return int(v[: -len(unit)]) * _UNITS[unit]
    return int(v)


def expected_node_config(s: Settings) -> dict[str, str]:
    """What CONFIG GET should answer on every node, in Redis's own spelling."""
    return {
        "min-replicas-to-write": str(s.min_replicas_to_write),
        "min-replicas-max-lag": str(s.min_replicas_max_lag),
        "repl-diskless-sync": "yes" if s.repl_diskless_sync else "no",
        "repl-diskless-sync-delay": str(s.repl_diskless_sync_delay),
        "appendonly": "yes" if s.persistence else "no",
        "maxmemory": str(memory_bytes(s.maxmemory)),
        "maxmemory-policy": s.maxmemory_policy,
        **({} if s.persistence else {"save": ""}),
    }


def expected_sentinel_config(s: Settings) -> dict[str, str]:
    return {
        "quorum": str(s.quorum),
        "down-after-milliseconds": str(s.down_after_ms),
        "failover-timeout": str(s.failover_timeout_ms),
        "parallel-syncs": str(s.parallel_syncs),
    }


def find_drift(inv: Inventory, facts: ClusterFacts) -> tuple[list[Drift], list[str]]:
    """Differences, and the targets that could not be checked (down, CONFIG disabled)."""
    drifts: list[Drift] = []
    unchecked: list[str] = []
    want_n = expected_node_config(inv.settings)
    for n in facts.nodes:
        if not n.up or not n.config:
            unchecked.append(f"{n.name}: {n.error or 'CONFIG GET not answered'}")
            continue
        for k, v in want_n.items():
            got = n.config.get(k)
            if got is not None and got != v:
                drifts.append(Drift(n.name, k, v, got))
    want_s = expected_sentinel_config(inv.settings)
    for s in facts.sentinels:
        if not s.up or not s.config:
            unchecked.append(f"{s.name}: {s.error or 'SENTINEL MASTER not answered'}")
            continue
        for k, v in want_s.items():
            got = s.config.get(k)
            if got is not None and got != v:
                drifts.append(Drift(s.name, k, v, got))
    return drifts, unchecked


def sentinel_drifts(inv: Inventory, facts: ClusterFacts) -> dict[str, list[Drift]]:
    """Sentinel -> the settings it watches the primary with that the inventory does not say:
    what a repair cut between its SENTINEL MONITOR and SENTINEL SET leaves (Sentinel's
    defaults, down-after 30 s, failover-timeout 180 s), which nothing else reports."""
    sentinels = {s.name for s in inv.sentinels}
    out: dict[str, list[Drift]] = {}
    for d in find_drift(inv, facts)[0]:
        if d.target in sentinels:
            out.setdefault(d.target, []).append(d)
    return out
