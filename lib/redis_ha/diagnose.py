"""Why a replica needs rebuilding, and whether rebuilding it now is safe: pure functions over facts.

Everything here is computed from data already gathered (cluster facts plus a little evidence:
the primary's full-sync counter and log lines), so every verdict can be tested from a table
without a cluster. The action layer (`actions/replica.py`) gathers; this module decides.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_ha.facts import ClusterFacts, NodeFacts
from redis_ha.health import Health
from redis_ha.inventory import Inventory

LAG_BYTES_REBUILD = 64 * 1024 * 1024  # far behind: a partial resync may no longer be possible
FULL_SYNCS_LOOP = 3  # "Full resync" lines in a replica's recent log that suggest a loop
FULL_SYNCS_MANY = 10  # full syncs served by the primary since it started: someone loops
DEFAULT_OBL_HARD = 256 * 1024 * 1024  # Redis default client-output-buffer-limit replica hard

# Log lines that explain a broken or looping replication (Redis 7.0 wording).
LOG_PATTERNS: tuple[tuple[str, re.Pattern[str], str, int], ...] = (
    (
        "primary",
        re.compile(r"scheduled to be closed ASAP for overcoming of output buffer limits"),
        "the primary dropped a replica for exceeding client-output-buffer-limit "
        "(raise 'client-output-buffer-limit replica' on the primary, or a rebuild will loop)",
        1,
    ),
    (
        "replica",
        re.compile(r"(Unable to AUTH to MASTER|WRONGPASS|NOAUTH|-NOPERM)", re.I),
        "replication authentication to the primary fails (masterauth differs from the "
        "primary's password; a restart from the rendered config restores it)",
        1,
    ),
    (
        "replica",
        re.compile(r"Full resync from master"),
        "repeated full resyncs in the replica's log (a sync loop?)",
        FULL_SYNCS_LOOP,
    ),
    (
        "replica",
        re.compile(r"(Error condition on socket for SYNC|MASTER aborted replication)"),
        "replication attempts fail in the replica's log",
        2,
    ),
)


@dataclass
class Evidence:
    """What facts.py does not gather but a diagnosis wants (None: could not be read)."""

    full_syncs: int | None = None  # INFO stats sync_full on the primary
    link_down_s: int | None = None  # master_link_down_since_seconds on the replica
    obl_hard: int | None = None  # primary's client-output-buffer-limit replica hard limit
    mem_available: int | None = None  # bytes free on the primary's host (control backend)
    primary_log: list[str] | None = None
    replica_log: list[str] | None = None


@dataclass
class Diagnosis:
    node: str
    primary: str | None
    needs_rebuild: bool
    findings: list[str] = field(default_factory=list)  # why (or why not) rebuild
    refusals: list[str] = field(default_factory=list)  # why it must not run now
    warnings: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def replica_obl_hard(raw: str | None) -> int | None:
    """The replica class's hard limit in bytes from a `client-output-buffer-limit` value
    ("normal 0 0 0 slave 268435456 67108864 60 pubsub ..."); None when it names none."""
    words = str(raw or "").split()
    for i, w in enumerate(words[:-1]):
        if w in ("slave", "replica"):
            try:
                return int(words[i + 1])
            except ValueError:
                return None
    return None


def log_findings(ev: Evidence) -> list[str]:
    """One finding per kind of trouble seen in the logs, with how often it appeared."""
    out = []
    for which, pat, text, at_least in LOG_PATTERNS:
        lines = ev.primary_log if which == "primary" else ev.replica_log
        if not lines:
            continue
        n = sum(1 for ln in lines if pat.search(ln))
        if n >= at_least:
            out.append(f"{text} ({n}x in the {which}'s recent log)")
    return out


def rebuild_reasons(
    node: NodeFacts, primary: NodeFacts | None, ev: Evidence, lag_limit: int = LAG_BYTES_REBUILD
) -> list[str]:
    """Why this replica is not a healthy copy of the primary (empty: no reason found)."""
    why: list[str] = []
    if not node.up:
        return [f"{node.name} is down: {node.error}"]
    if primary is None:
        return why
    if node.role == "replica" and node.replicating_from != primary.name:
        why.append(
            f"{node.name} replicates from {node.replicating_from}, not from the primary "
            f"{primary.name} (diverged: it follows the wrong primary)"
        )
    elif node.role == "replica" and not node.link_up:
        since = f" for {ev.link_down_s} s" if ev.link_down_s and ev.link_down_s > 0 else ""
        if node.sync_in_progress:
            why.append(f"{node.name}: full sync from {primary.name} in progress")
        else:
            why.append(
                f"{node.name}: master_link_status down{since}: it serves stale data and "
                "receives no writes"
            )
    elif node.loading:
        why.append(f"{node.name} is loading a dataset")
    if node.lag_bytes is not None and node.lag_bytes > lag_limit:
        why.append(f"{node.name} is {node.lag_bytes} bytes behind {primary.name}")
    if ev.full_syncs is not None and ev.full_syncs >= FULL_SYNCS_MANY and why:
        why.append(
            f"{primary.name} has served {ev.full_syncs} full syncs since it started "
            "(a replica stuck in a sync loop?)"
        )
    return why


def refusals(
    inv: Inventory,
    facts: ClusterFacts,
    health: Health,
    node: str,
    *,
    allow_write_outage: bool = False,
) -> tuple[list[str], list[str]]:
    """(refusals, warnings): what forbids rebuilding `node` now, and what only deserves a shout."""
    refuse: list[str] = []
    warn: list[str] = []
    n = facts.node(node)
    if health.primary == node:
        refuse.append(
            f"{node} is the current primary: rebuilding it would wipe the live data. "
            "Fail over first (failover runbook), then rebuild it as a replica"
        )
        return refuse, warn
    if n.up and n.role == "master":
        refuse.append(
            f"{node} says it is a primary but the Sentinels do not name it: it may hold writes "
            "nobody else has. Use the split-brain runbook, not a rebuild"
        )
    if health.primary is None:
        refuse.append("there is no usable primary to copy from: " + "; ".join(health.problems[:2]))
    busy = [s.name for s in facts.sentinels if s.up and s.failing_over]
    if busy:
        refuse.append(f"a failover is in progress ({', '.join(busy)}); wait until it ends")
    need = inv.settings.min_replicas_to_write
    if node in health.in_sync_replicas and need:
        left = len(health.in_sync_replicas) - 1
        if left < need:
            msg = (
                f"{node} is the last in-sync replica: taking it out leaves {health.primary} with "
                f"{left} in-sync replica(s) while min-replicas-to-write is {need}, so the primary "
                "would refuse every write until the rebuild ends"
            )
            if allow_write_outage:
                warn.append("WRITE OUTAGE ACCEPTED: " + msg)
            else:
                refuse.append(msg + " (--allow-write-outage to accept that)")
    return refuse, warn


def headroom(primary: NodeFacts, ev: Evidence) -> tuple[bool, str]:
    """Can the primary's host afford a full sync: fork copy-on-write plus the replica's buffer.

    Worst case the fork duplicates every page the app rewrites during the transfer (bounded by
    used_memory) and the output buffer grows to its hard limit before Redis drops the replica.
    """
    used = primary.used_memory or 0
    obl = ev.obl_hard if ev.obl_hard else DEFAULT_OBL_HARD
    need = used + obl
    avail = ev.mem_available
    source = "MemAvailable on its host"
    if avail is None and primary.total_memory:
        avail = primary.total_memory - used
        source = "total_system_memory minus used_memory (other processes not counted)"
    if avail is None:
        return True, f"memory headroom of {primary.name} unknown; need up to {_mb(need)}"
    ok = avail >= need
    verdict = "enough" if ok else "NOT enough"
    return ok, (
        f"{verdict} memory on {primary.name} for a full sync: need up to {_mb(need)} "
        f"(used_memory {_mb(used)} + output buffer {_mb(obl)}), {_mb(avail)} available ({source})"
    )


def plan(inv: Inventory, node: NodeFacts, primary: NodeFacts | None) -> list[str]:
    """What the rebuild will do, to which node, in order."""
    p = primary.name if primary else "the primary"
    prio = inv.settings.replica_priority
    live = "on the live node and " if node.up else ""
    size = f" (~{_mb(primary.used_memory or 0)} in memory)" if primary else ""
    return [
        f"{node.name}: replica-priority 0 and replica-announced no {live}at start, so Sentinel "
        "cannot promote it and clients do not read from it while it is empty",
        f"{node.name}: {'stop the process and ' if node.up else ''}start it empty as a replica "
        f"of {p} (control backend)",
        f"{p}: serve a full sync to {node.name}{size}; progress shown",
        f"{node.name}: verify link up, not loading, offset and key count match {p}",
        f"{node.name}: restore replica-priority {prio} and replica-announced yes; every Sentinel "
        "must list it as a healthy replica",
    ]


def diagnose(
    inv: Inventory,
    facts: ClusterFacts,
    health: Health,
    node: str,
    ev: Evidence,
    *,
    allow_write_outage: bool = False,
) -> Diagnosis:
    """The whole picture for one node: reasons, refusals, warnings and the plan."""
    n = facts.node(node)
    primary = facts.node(health.primary) if health.primary else None
    findings = rebuild_reasons(n, primary, ev) if health.primary != node else []
    refuse, warn = refusals(inv, facts, health, node, allow_write_outage=allow_write_outage)
    notes: list[str] = []
    if primary is not None and health.primary != node:
        ok, msg = headroom(primary, ev)
        (notes if ok else refuse).append(msg)
    if n.up and n.replica_priority == 0:
        warn.append(
            f"{node} has replica-priority 0 (left by an interrupted rebuild?): Sentinel will "
            "never promote it until it is restored"
        )
    needs = bool(findings)
    if not needs and health.primary != node:
        findings.append(f"no sign of trouble: {node} is an in-sync replica of {health.primary}")
    return Diagnosis(
        node=node,
        primary=health.primary,
        needs_rebuild=needs,
        findings=findings + log_findings(ev) + notes,
        refusals=refuse,
        warnings=warn,
        plan=plan(inv, n, primary) if not refuse else [],
    )


def _mb(b: int) -> str:
    return f"{b / 1024 / 1024:.0f} MB" if b >= 1024 * 1024 else f"{b} B"
