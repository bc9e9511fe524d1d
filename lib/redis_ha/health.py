"""Turn cluster facts into a verdict: pure functions, no I/O, tested from data.

The authoritative primary is the address a majority of Sentinels report (`majority_choice`):
Sentinels are what clients ask, so their majority is what the app uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_ha.facts import ClusterFacts, NodeFacts, SentinelFacts
from redis_ha.inventory import Inventory

HEALTHY, DEGRADED, DOWN, UNKNOWN = "healthy", "degraded", "down", "unknown"
# Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check itself could not judge).
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, DOWN: 2, UNKNOWN: 3}
# The one threshold of "in sync": a replica further behind its primary than this is lagging (a
# problem in the verdict, and not caught up for a check that waits for a replica to catch up).
IN_SYNC_MAX_LAG_BYTES = 1_000_000


@dataclass
class Health:
    level: str
    primary: str | None  # node name of the usable primary
    authoritative: str | None  # host:port a Sentinel majority reports
    quorum_ok: bool
    split_brain: bool
    sentinels_agree: bool
    in_sync_replicas: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.level == HEALTHY

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.level]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["healthy"] = self.healthy
        return d


def majority(n: int) -> int:
    return n // 2 + 1


def majority_choice(votes: Mapping[str, int], n_sentinels: int) -> str | None:
    """The primary address at least a majority of the `n_sentinels` listed Sentinels name (at
    most one can), or None: the one rule of "which primary does a Sentinel majority name"."""
    need = majority(n_sentinels)
    return next((addr for addr, n in votes.items() if n >= need), None)


def authoritative_primary(facts: ClusterFacts) -> tuple[str | None, int]:
    """The primary address a majority of all listed Sentinels agree on, and its vote count."""
    return majority_primary(facts.sentinels, len(facts.sentinels))


def majority_primary(sentinels: Sequence[SentinelFacts], listed: int) -> tuple[str | None, int]:
    """The address a majority of `listed` Sentinels name, and its vote count (without a
    majority: None and the largest count), whoever asks (the verdict, safestart, the lock)."""
    votes = Counter(s.primary for s in sentinels if s.up and s.primary)
    if not votes:
        return None, 0
    addr = majority_choice(votes, listed)
    return addr, votes[addr] if addr else max(votes.values())


def in_sync(replica: NodeFacts, primary: NodeFacts) -> bool:
    """Replicating from the primary with the link up, not syncing, not loading."""
    return sync_problem(replica, primary, max_lag_bytes=None) is None


def lag_bytes(replica: NodeFacts, primary: NodeFacts) -> int:
    """How many bytes of the primary's replication stream the replica has not applied yet."""
    return max(0, (primary.offset or 0) - (replica.offset or 0))


def sync_problem(
    replica: NodeFacts, primary: NodeFacts, max_lag_bytes: int | None = IN_SYNC_MAX_LAG_BYTES
) -> str | None:
    """Why `replica` is not an in-sync copy of `primary`, in plain words (None: it is).

    The offset comparison (at most `max_lag_bytes` behind) is skipped with None: that is
    `in_sync`, the link-level verdict of `assess`; checks that wait for a copy compare offsets.
    """
    r, p = replica.name, primary.name
    if not replica.up:
        return f"{r} is down: {replica.error}"
    if r == p:
        return f"{r} is the primary, not a replica"
    if replica.role != "replica" or replica.replicating_from != p:
        src = replica.replicating_from if replica.role == "replica" else "nothing (it is a primary)"
        return f"{r} replicates from {src}, not from {p}"
    if not replica.link_up:
        return f"{r}: replication link to {p} is down"
    if replica.sync_in_progress or replica.loading:
        return f"{r}: full sync from {p} in progress"
    lag = lag_bytes(replica, primary)
    if max_lag_bytes is not None and lag > max_lag_bytes:
        return f"{r} is {lag} bytes behind {p}"
    return None


def cannot_judge(facts: ClusterFacts) -> str | None:
    """Why the tool cannot judge the cluster, or None when it can.

    When no node could be read and at least one refused our credentials (or they could not be
    read), "down" would be a guess: those nodes answered. The verdict is then UNKNOWN.
    """
    if any(n.up for n in facts.nodes):
        return None
    denied = [n for n in facts.nodes if n.denied]
    if not denied:
        return None
    by_error: dict[str, list[str]] = {}
    for n in denied:
        by_error.setdefault(n.error or "refused", []).append(n.name)
    said = "; ".join(f"{err} on {', '.join(names)}" for err, names in by_error.items())
    return f"no node accepted the tool's credentials: {said}"


def assess(inv: Inventory, facts: ClusterFacts) -> Health:
    """A verdict with every problem said in plain words."""
    why = cannot_judge(facts)
    if why:
        return Health(
            level=UNKNOWN,
            primary=None,
            authoritative=None,
            quorum_ok=False,
            split_brain=False,
            sentinels_agree=False,
            problems=[why],
        )
    problems: list[str] = []
    s_up = [s for s in facts.sentinels if s.up]
    for s in facts.sentinels:
        if s.denied:
            problems.append(f"{s.name} ({s.address}) refused our credentials: {s.error}")
        elif not s.up:
            problems.append(f"{s.name} ({s.address}) is down: {s.error}")
        elif s.error:
            problems.append(f"{s.name}: {s.error}")
    for n in facts.nodes:
        if n.denied:
            problems.append(f"{n.name} ({n.address}) refused our credentials: {n.error}")
        elif not n.up:
            problems.append(f"{n.name} ({n.address}) is down: {n.error}")

    auth_addr, votes = authoritative_primary(facts)
    views = {s.name: s.primary_name or "nothing" for s in s_up}
    agree = len(set(views.values())) <= 1
    if not agree:
        said = ", ".join(f"{k} says {v}" for k, v in sorted(views.items()))
        problems.append(f"Sentinels disagree on the primary: {said}")
    if s_up and auth_addr is None:
        problems.append(
            f"no majority of Sentinels agrees on a primary ({votes} of {len(facts.sentinels)})"
        )

    claimed = facts.claimed_primaries()
    split = len(claimed) > 1 or not agree
    if len(claimed) > 1:
        names = ", ".join(n.name for n in claimed)
        problems.append(f"more than one node says it is primary: {names} (split-brain)")

    primary: NodeFacts | None = None
    if auth_addr:
        pname = inv.name_of(auth_addr)
        cand = next((n for n in facts.nodes if n.name == pname), None)
        if cand is None:
            problems.append(f"the Sentinels' primary {auth_addr} is not a node of this inventory")
        elif cand.denied:
            problems.append(f"the primary {cand.name} named by the Sentinels refused us")
        elif not cand.up:
            problems.append(f"the primary {cand.name} named by the Sentinels is unreachable")
        elif cand.role != "master":
            problems.append(
                f"the Sentinels name {cand.name} as primary but it is a replica "
                f"(of {cand.replicating_from})"
            )
        else:
            primary = cand
    elif not s_up and len(claimed) == 1:
        primary = claimed[0]  # no Sentinel to ask: the lone self-declared primary

    for s in s_up:
        if "o_down" in s.flags or "s_down" in s.flags:
            state = "objectively down" if "o_down" in s.flags else "subjectively down"
            problems.append(f"{s.name} sees the primary as {state}")
        if s.failover_state and s.failover_state != "none":
            problems.append(f"{s.name}: failover in progress ({s.failover_state})")

    quorum_ok = bool(s_up) and any(s.quorum_ok for s in s_up) and votes >= inv.settings.quorum
    if s_up and not any(s.quorum_ok for s in s_up):
        msg = next((s.quorum_msg for s in s_up if s.quorum_msg), "")
        problems.append(f"Sentinel quorum check failed: {msg}")
    if not s_up and not all(s.denied for s in facts.sentinels):
        problems.append("no Sentinel answers: automatic failover is impossible")

    good: list[str] = []
    if primary:
        expected = len(inv.nodes) - 1
        for n in facts.nodes:
            if n is primary or not n.up:
                continue
            if n.role == "master":
                continue  # already reported as split-brain
            if n.replicating_from != primary.name:
                problems.append(
                    f"{n.name} replicates from {n.replicating_from}, not from the primary "
                    f"{primary.name}"
                )
            elif not n.link_up:
                problems.append(f"{n.name}: replication link to {primary.name} is down")
            elif n.sync_in_progress or n.loading:
                problems.append(f"{n.name}: full sync in progress")
            else:
                good.append(n.name)
                if (n.lag_bytes or 0) > IN_SYNC_MAX_LAG_BYTES:
                    problems.append(f"{n.name} is {n.lag_bytes} bytes behind {primary.name}")
        if len(good) < expected:
            problems.append(
                f"primary {primary.name} has {len(good)} in-sync replica(s), {expected} expected"
            )
        need = inv.settings.min_replicas_to_write
        if need and len(good) < need:
            problems.append(
                f"primary {primary.name} refuses writes: min-replicas-to-write {need} "
                f"but {len(good)} in-sync replica(s)"
            )

    writable = primary is not None and len(good) >= inv.settings.min_replicas_to_write
    if not writable:
        level = DOWN
        if primary is None and not any("primary" in p for p in problems):
            problems.append("no usable primary")
    elif problems:
        level = DEGRADED
    else:
        level = HEALTHY
    return Health(
        level=level,
        primary=primary.name if primary else None,
        authoritative=auth_addr,
        quorum_ok=quorum_ok,
        split_brain=split,
        sentinels_agree=agree,
        in_sync_replicas=good,
        problems=problems,
    )


def status_dict(inv: Inventory, facts: ClusterFacts, health: Health) -> dict[str, Any]:
    """The `status --json` object: stable keys for scripts and alerting."""
    return {
        "inventory": str(inv.path),
        "master_name": inv.master_name,
        "primary": health.primary,
        "authoritative": health.authoritative,
        "nodes": [
            {
                "name": n.name,
                "address": n.address,
                "up": n.up,
                "error": n.error,
                "role": n.role,
                "replicating_from": n.replicating_from,
                "link_up": n.link_up,
                "offset": n.offset,
                "lag_ms": n.lag_ms,
                "lag_bytes": n.lag_bytes,
                "keys": n.keys,
                "sync_in_progress": n.sync_in_progress,
                "replica_priority": n.replica_priority,
                "server": n.server,
                "version": n.version,
            }
            for n in facts.nodes
        ],
        "sentinels": [
            {
                "name": s.name,
                "address": s.address,
                "up": s.up,
                "error": s.error,
                "primary": s.primary,
                "primary_name": s.primary_name,
                "config_epoch": s.config_epoch,
                "flags": s.flags,
                "quorum_ok": s.quorum_ok,
                "failover_state": s.failover_state,
                "server": s.server,
                "version": s.version,
            }
            for s in facts.sentinels
        ],
        "quorum_ok": health.quorum_ok,
        "split_brain": health.split_brain,
        "sentinels_agree": health.sentinels_agree,
        "healthy": health.healthy,
        "level": health.level,
        "problems": health.problems,
        "elapsed_ms": facts.elapsed_ms,
    }
