"""Incident triage: from facts to "what is wrong, and which runbook fixes it" (pure).

The on-call engineer paged at 3 a.m. should not have to map symptoms to procedures under stress.
The diagnoses are data (`RULES`): each rule is a detector over one look at the cluster and a
leaf naming the runbook, the step to start at and the command with its arguments, so
`runbooks.check` can check every leaf and a test can walk the table. Findings are ordered: what
loses sessions or writes first, then what removes redundancy, then what only drifts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from redis_ha import diagnose
from redis_ha import drift as driftmod
from redis_ha import runbook as runbookmod
from redis_ha.cli.names import command
from redis_ha.facts import ClusterFacts, NodeFacts
from redis_ha.health import IN_SYNC_MAX_LAG_BYTES, UNKNOWN, Health, in_sync
from redis_ha.inventory import Inventory

CRITICAL, HIGH, MEDIUM, INFO = 0, 1, 2, 3
SEVERITY_NAMES = {CRITICAL: "critical", HIGH: "high", MEDIUM: "medium", INFO: "info"}

# A primary that came back this recently with no keys while a replica still has data is the
# restart-empty danger (runbooks/safe-restart.md): its replicas are about to be wiped.
RESTART_EMPTY_UPTIME_S = 120
# A primary using this share of maxmemory under an evicting policy is dropping sessions.
EVICTING_SHARE = 0.95
NOT_MONITORING = "does not monitor"
# A replica whose full syncs are cut off starts over and over; one look sees one sync (normal
# after a restart). Between two looks, a primary that served at least this many full syncs, and
# more than it has replicas out of sync, is feeding a loop.
LOOP_SYNCS = 2


@dataclass
class Finding:
    severity: int
    title: str
    why: str
    runbook: str | None  # procedure name (runbooks/<name>.md)
    command: str | None  # the next command to run
    params: dict[str, Any] = field(default_factory=dict)  # for running the procedure directly
    diagnosis: str = ""  # the rule's name (stable, for bots)
    step: str | None = None  # the runbook step to start at

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES[self.severity]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity_name
        return d


class Seen(NamedTuple):
    """One look at the cluster, as every detector receives it (with an earlier look's facts
    when there was one: counters only tell something over time)."""

    inv: Inventory
    facts: ClusterFacts
    health: Health
    earlier: ClusterFacts | None = None


@dataclass(frozen=True)
class Leaf:
    """Where a diagnosis leads: runbook, the step to start at, and the command to run.

    `args` is the task's arguments as a template over the match (`--node {node}`); `inputs` are
    the match values handed to the procedure when `incident` runs it; `before` is what must be
    done by hand first (restarting a process no backend may reach); `dry_first` shows the plan
    before the run.
    """

    runbook: str
    step: str
    task: str
    args: str = ""
    inputs: tuple[str, ...] = ()
    before: str = ""
    dry_first: bool = False

    def command(self, match: dict[str, Any]) -> str:
        base = command(self.task + (f" {self.args.format(**match)}" if self.args else ""))
        cmd = f"{base} --dry-run, then {base}" if self.dry_first else base
        return f"{self.before.format(**match)}, then {cmd}" if self.before else cmd


@dataclass(frozen=True)
class Rule:
    """One diagnosis: a detector yielding one match per occurrence, its words, and its leaf."""

    name: str
    severity: int | Callable[[Seen, dict[str, Any]], int]
    detect: Callable[[Seen], Iterator[dict[str, Any]]]
    title: str
    why: str
    leaf: Leaf

    def findings(self, seen: Seen) -> Iterator[Finding]:
        for m in self.detect(seen):
            sev = self.severity(seen, m) if callable(self.severity) else self.severity
            yield Finding(
                sev,
                self.title.format(**m),
                self.why.format(**m),
                self.leaf.runbook,
                self.leaf.command(m),
                {k: m[k] for k in self.leaf.inputs},
                self.name,
                self.leaf.step,
            )


# --- detectors (pure, over one Seen) --------------------------------------------------------


def _settings(seen: Seen) -> dict[str, Any]:
    s = seen.inv.settings
    return {
        "quorum": s.quorum,
        "min_replicas": s.min_replicas_to_write,
        "failover_s": f"{s.failover_timeout_ms / 1000:.0f}",
        "down_after_s": f"{s.down_after_ms / 1000:g}",
    }


def named_primaries(facts: ClusterFacts) -> set[str]:
    """The primaries the answering, monitoring Sentinels name (one when they agree), by
    inventory name (by address when it is not one)."""
    return {s.primary_name or s.primary for s in facts.sentinels if s.up and s.primary}


def _named(seen: Seen) -> set[str]:
    return named_primaries(seen.facts)


def _primary(seen: Seen) -> NodeFacts | None:
    """The primary clients reach: the verdict's, or, with too few Sentinels for a majority,
    the one node claiming it that every answering Sentinel names."""
    if seen.health.primary:
        return seen.facts.node(seen.health.primary)
    claimed = seen.facts.claimed_primaries()
    if len(claimed) == 1 and _named(seen) == {claimed[0].name}:
        return claimed[0]
    return None


def _in_sync(seen: Seen) -> list[str]:
    """The in-sync replicas of `_primary` (the verdict's list when it named the primary)."""
    p = _primary(seen)
    if p is None or seen.health.primary:
        return seen.health.in_sync_replicas
    return [n.name for n in seen.facts.nodes if n is not p and n.up and in_sync(n, p)]


def _s_up(seen: Seen) -> int:
    return sum(1 for s in seen.facts.sentinels if s.up)


def all_down(seen: Seen) -> Iterator[dict[str, Any]]:
    if not any(n.up for n in seen.facts.nodes):
        yield {"n": len(seen.facts.nodes)}


def _uptime(n: NodeFacts) -> int:
    """Seconds up; unknown counts as long up (0 is a node started this very second)."""
    return 10**9 if n.uptime_s is None else n.uptime_s


def restart_empty(seen: Seen) -> Iterator[dict[str, Any]]:
    """A primary up for moments with 0 keys while some replica of it still holds data."""
    for p in seen.facts.claimed_primaries():
        if _uptime(p) > RESTART_EMPTY_UPTIME_S or (p.keys or 0) > 0:
            continue
        if any(r.up and r.role == "replica" and (r.keys or 0) > 0 for r in seen.facts.nodes):
            yield {"node": p.name}
            return


def two_primaries(seen: Seen) -> Iterator[dict[str, Any]]:
    claimed = [n for n in seen.facts.claimed_primaries() if not _just_back(seen, n)]
    if len(claimed) > 1:
        yield {"nodes": ", ".join(n.name for n in claimed)}


def sentinels_disagree(seen: Seen) -> Iterator[dict[str, Any]]:
    if len(_named(seen)) > 1 and len(seen.facts.claimed_primaries()) <= 1:
        said = ", ".join(
            f"{s.name} says {s.primary_name or s.primary or 'nothing'}"
            for s in seen.facts.sentinels
            if s.up
        )
        yield {"said": said}


def _no_primary(seen: Seen) -> bool:
    up = any(n.up for n in seen.facts.nodes)
    return _primary(seen) is None and len(_named(seen)) <= 1 and up


def failover_pending(seen: Seen) -> Iterator[dict[str, Any]]:
    f = seen.facts
    who = [s.name for s in f.sentinels if s.up and (s.failing_over or "o_down" in s.flags)]
    if _no_primary(seen) and who:
        yield {**_settings(seen), "who": ", ".join(who)}


def primary_down_no_quorum(seen: Seen) -> Iterator[dict[str, Any]]:
    pending = next(failover_pending(seen), None)
    if _no_primary(seen) and not pending and _s_up(seen) < seen.inv.settings.quorum:
        yield {**_settings(seen), "up": _s_up(seen)}


def primary_down(seen: Seen) -> Iterator[dict[str, Any]]:
    pending = next(failover_pending(seen), None)
    if _no_primary(seen) and not pending and _s_up(seen) >= seen.inv.settings.quorum:
        yield _settings(seen)


def _memory(p: NodeFacts) -> tuple[int, int, str]:
    policy = p.config.get("maxmemory-policy", "")
    return p.used_memory or 0, p.maxmemory or 0, policy


def out_of_memory(seen: Seen) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    if p is None:
        return
    used, limit, policy = _memory(p)
    if limit and used >= limit and policy == "noeviction":
        yield {"node": p.name, "used": used, "limit": limit}


def _refuses_writes(seen: Seen) -> bool:
    """The primary has fewer in-sync replicas than min-replicas-to-write (NOREPLICAS)."""
    need = seen.inv.settings.min_replicas_to_write
    return _primary(seen) is not None and bool(need) and len(_in_sync(seen)) < need


def noreplicas(seen: Seen) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    if p is None or not _refuses_writes(seen):
        return
    # A replica to bring back: not the old primary still down (restarting it is its own
    # finding, never a rebuild), not one in a full sync (it is coming back by itself), not one
    # in a full-sync loop (a rebuild would loop too: that finding says what to change).
    looping = _looping(seen)
    worst = next(
        (
            n
            for n in seen.facts.nodes
            if _lost_replica(seen, n)
            and not _sentinel_lists_unseen(seen, n.name)
            and not (n.up and (n.sync_in_progress or n.loading))
            and n.name not in looping
        ),
        None,
    )
    if worst is not None:
        yield {**_settings(seen), "primary": p.name, "node": worst.name}


def writes_paused(seen: Seen) -> Iterator[dict[str, Any]]:
    for n in seen.facts.claimed_primaries():
        if n.writes_paused:
            yield {"node": n.name}


def _sentinel_lists_unseen(seen: Seen, node: str) -> bool:
    """Some Sentinel lists `node` as a replica it has never heard from since it became one
    (`info-refresh` 0): the old primary after a failover, not a replica that crashed."""
    for s in seen.facts.sentinels:
        for r in s.replicas:
            addr = str(r.get("name", ""))
            if seen.inv.name_of(addr) == node and str(r.get("info-refresh", "")) == "0":
                return True
    return False


def old_primary_down(seen: Seen) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    if p is None:
        return
    for n in seen.facts.nodes:
        if not n.up and _sentinel_lists_unseen(seen, n.name):
            yield {"node": n.name, "primary": p.name}


def _lost_replica(seen: Seen, n: NodeFacts) -> bool:
    """Not the primary, not a second primary, and not an in-sync replica."""
    p = _primary(seen)
    primary = p.name if p else None
    return n.name != primary and n.name not in _in_sync(seen) and n.role != "master"


def _replicas(seen: Seen, state: Callable[[NodeFacts], bool]) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    if p is None:
        return
    for n in seen.facts.nodes:
        if _lost_replica(seen, n) and state(n):
            yield {**_settings(seen), "node": n.name, "primary": p.name}


def replica_down(seen: Seen) -> Iterator[dict[str, Any]]:
    yield from _replicas(seen, lambda n: not n.up and not _sentinel_lists_unseen(seen, n.name))


def _settled(n: NodeFacts) -> bool:
    return n.up and not (n.sync_in_progress or n.loading)


def _just_back(seen: Seen, n: NodeFacts) -> bool:
    """Restarted moments ago as a primary no Sentinel names, holding nothing: the old primary
    back, before Sentinel turns it into a replica (a split-brain with nothing to salvage)."""
    p = _primary(seen)
    fresh = _uptime(n) <= RESTART_EMPTY_UPTIME_S and (n.keys or 0) == 0
    unnamed = n.name not in _named(seen)
    return n.up and n.role == "master" and p is not None and n is not p and fresh and unnamed


def back_not_replicating(seen: Seen) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    for n in seen.facts.nodes:
        if p is not None and _just_back(seen, n):
            yield {"node": n.name, "primary": p.name}


def _looping(seen: Seen) -> set[str]:
    """The replicas the full-sync-loop finding names (said once, by that finding)."""
    return {m["node"] for m in full_sync_loop(seen)}


def replica_detached(seen: Seen) -> Iterator[dict[str, Any]]:
    looping = _looping(seen)
    yield from _replicas(seen, lambda n: _settled(n) and n.name not in looping)


def replica_syncing(seen: Seen) -> Iterator[dict[str, Any]]:
    looping = _looping(seen)
    yield from _replicas(
        seen, lambda n: n.up and (n.sync_in_progress or n.loading) and n.name not in looping
    )


def full_syncs_served(
    earlier: ClusterFacts | None, facts: ClusterFacts, name: str
) -> tuple[int, float] | None:
    """(full syncs, seconds) node `name` served between an earlier look and `facts`; None
    when the earlier look did not see this same process (restarted: its counter restarted)."""
    if earlier is None:
        return None
    now = facts.node(name)
    before = next((n for n in earlier.nodes if n.name == name), None)
    if before is None or not before.up or not now.up or before.run_id != now.run_id:
        return None
    served = int(now.stats.get("sync_full", 0) - before.stats.get("sync_full", 0))
    return served, facts.taken_at - earlier.taken_at


def full_sync_loop(seen: Seen) -> Iterator[dict[str, Any]]:
    """Replicas out of sync while their primary keeps serving full syncs (more than one each)."""
    p = _primary(seen)
    got = full_syncs_served(seen.earlier, seen.facts, p.name) if p is not None else None
    if p is None or got is None:
        return
    served, took = got
    out = [n for n in seen.facts.nodes if n.up and n.role == "replica" and _lost_replica(seen, n)]
    if not out or served < LOOP_SYNCS or served <= len(out):
        return
    hard = diagnose.replica_obl_hard(p.config.get("client-output-buffer-limit"))
    backlog = int(p.stats.get("repl_backlog_size", 0))
    for n in out:
        yield {
            "node": n.name,
            "primary": p.name,
            "served": served,
            "took": f"{took:.0f}",
            # Redis 7 never applies a replica hard limit below repl-backlog-size.
            "limit": max(hard or 0, backlog) if hard else "none",
            "backlog": backlog,
            "used": p.used_memory or 0,
        }


def replica_lagging(seen: Seen) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    if p is None:
        return
    for name in _in_sync(seen):
        n = seen.facts.node(name)
        if (n.lag_bytes or 0) > IN_SYNC_MAX_LAG_BYTES:
            yield {"node": name, "lag": n.lag_bytes, "primary": p.name}


def quorum_lost(seen: Seen) -> Iterator[dict[str, Any]]:
    if _primary(seen) is not None and _s_up(seen) < seen.inv.settings.quorum:
        yield {**_settings(seen), "up": _s_up(seen), "down": _down_sentinels(seen)}


def _down_sentinels(seen: Seen) -> str:
    return ", ".join(s.name for s in seen.facts.sentinels if not s.up)


def sentinels_down(seen: Seen) -> Iterator[dict[str, Any]]:
    up, n = _s_up(seen), len(seen.facts.sentinels)
    if up < n and (up >= seen.inv.settings.quorum or _primary(seen) is None):
        yield {**_settings(seen), "up": up, "n": n, "down": _down_sentinels(seen)}


def _sentinels_down_severity(seen: Seen, m: dict[str, Any]) -> int:
    return HIGH if m["up"] <= seen.inv.settings.quorum else MEDIUM


def not_monitoring(seen: Seen) -> Iterator[dict[str, Any]]:
    for s in seen.facts.sentinels:
        if s.up and s.error and NOT_MONITORING in s.error:
            yield {"sentinel": s.name, "master": seen.inv.master_name}


def tilt(seen: Seen) -> Iterator[dict[str, Any]]:
    for s in seen.facts.sentinels:
        if s.up and s.tilt:
            yield {"sentinel": s.name}


def evicting(seen: Seen) -> Iterator[dict[str, Any]]:
    p = _primary(seen)
    if p is None:
        return
    used, limit, policy = _memory(p)
    full = limit and used >= EVICTING_SHARE * limit
    evicted = int(p.stats.get("evicted_keys", 0))
    if full and policy != "noeviction" and evicted > 0:
        yield {"node": p.name, "evicted": evicted, "policy": policy}


def _loop_severity(seen: Seen, m: dict[str, Any]) -> int:
    """Critical when the primary refuses writes for it (too few in-sync replicas left)."""
    return CRITICAL if _refuses_writes(seen) else HIGH


def config_drift(seen: Seen) -> Iterator[dict[str, Any]]:
    drifts, _ = driftmod.find_drift(seen.inv, seen.facts)
    if drifts:
        first = "; ".join(str(d) for d in drifts[:3])
        more = f" (+{len(drifts) - 3} more)" if len(drifts) > 3 else ""
        targets = ", ".join(sorted({d.target for d in drifts}))
        yield {"targets": targets, "drifts": first + more}


def unexplained(seen: Seen) -> Iterator[dict[str, Any]]:
    for p in seen.health.problems:
        yield {"problem": p, "status": command("status")}  # the why: "see {status}"


def healthy(seen: Seen) -> Iterator[dict[str, Any]]:
    if seen.health.healthy and seen.health.primary:
        yield {"primary": seen.health.primary, "n": len(seen.health.in_sync_replicas)}


# --- the table ------------------------------------------------------------------------------

SENTINEL_REPAIR = "sentinel-repair"
MEMORY = "memory-pressure"

RULES: tuple[Rule, ...] = (
    Rule(
        "all-down",
        CRITICAL,
        all_down,
        "every Redis node is down ({n} of {n})",
        "no session can be read or written; roll back to the single instance (30-minute "
        "budget) while the cluster is brought back",
        Leaf("rollback", "preflight", "rollback.run"),
    ),
    Rule(
        "restart-empty",
        CRITICAL,
        restart_empty,
        "{node} restarted empty and is still the primary",
        "its replicas will resynchronise from it and lose every session; "
        "stop it or make it a replica now",
        Leaf("safe-restart", "if-it-happened-anyway", "runbooks.show", "safe-restart"),
    ),
    Rule(
        "split-brain",
        CRITICAL,
        two_primaries,
        "split-brain: more than one node says it is primary ({nodes})",
        "writes acknowledged by a stale primary are lost when it is demoted",
        Leaf("split-brain", "assess", "splitbrain.recover", dry_first=True),
    ),
    Rule(
        "sentinels-disagree",
        CRITICAL,
        sentinels_disagree,
        "Sentinels disagree on the primary ({said})",
        "clients asking different Sentinels write to different nodes",
        Leaf("split-brain", "assess", "splitbrain.recover", dry_first=True),
    ),
    Rule(
        "failover-pending",
        CRITICAL,
        failover_pending,
        "the primary is down and Sentinel is failing over",
        "{who} report it; wait up to failover-timeout ({failover_s} s), then verify",
        Leaf("failover-automatic", "agreement", "failover.verify"),
    ),
    Rule(
        "primary-down-no-quorum",
        CRITICAL,
        primary_down_no_quorum,
        "no usable primary and only {up} Sentinel(s) answer",
        "quorum is {quorum}: Sentinel cannot fail over by itself; "
        "restore Sentinels, or fall back to the single instance",
        Leaf("rollback", "preflight", "rollback.run"),
    ),
    Rule(
        "primary-down",
        CRITICAL,
        primary_down,
        "no usable primary",
        "Sentinel fails over after down-after ({down_after_s} s); if it does not recover within "
        "minutes, roll back to the single instance (30-minute budget)",
        Leaf("failover-automatic", "agreement", "failover.verify"),
    ),
    Rule(
        "out-of-memory",
        CRITICAL,
        out_of_memory,
        "primary {node} refuses writes: out of memory ({used} of maxmemory {limit} bytes, "
        "noeviction)",
        "every new session fails with OOM; raise maxmemory back to the inventory's value or "
        "free memory",
        Leaf(MEMORY, "measure", "memory.relieve"),
    ),
    Rule(
        "full-sync-loop",
        _loop_severity,
        full_sync_loop,
        "replica {node} is in a full-sync loop: {primary} served {served} full syncs in ~{took} s",
        "each sync is cut off before it ends: the writes during a sync ({used} bytes of data) "
        "outgrow the replica output buffer limit ({limit} bytes, never below repl-backlog-size "
        "{backlog}); raise client-output-buffer-limit replica (and repl-backlog-size) on "
        "{primary}. A rebuild would loop the same way",
        Leaf("replica-rebuild", "full-sync-loop", "replica.diagnose", "--node {node}"),
    ),
    Rule(
        "noreplicas",
        CRITICAL,
        noreplicas,
        "primary {primary} refuses writes (NOREPLICAS): too few in-sync replicas",
        "min-replicas-to-write is {min_replicas}; bring {node} back as a replica",
        Leaf("replica-rebuild", "diagnose", "replica.rebuild", "--node {node}", ("node",)),
    ),
    Rule(
        "writes-paused",
        CRITICAL,
        writes_paused,
        "writes are paused on the primary {node} (CLIENT PAUSE left behind)",
        "every write waits until the pause expires; a procedure interrupted mid-switchover "
        "leaves this",
        Leaf("writes-paused", "unpause", "writes.unpause"),
    ),
    Rule(
        "old-primary-down",
        HIGH,
        old_primary_down,
        "failover done: {primary} is primary, the old primary {node} is still down",
        "the cluster runs one replica short; restart {node} (do not rebuild): Sentinel makes it "
        "a replica of {primary}",
        Leaf(
            "failover-automatic",
            "old-primary",
            "failover.verify",
            "--old {node}",
            before="restart {node} (its process, container or service)",
        ),
    ),
    Rule(
        "replica-down",
        HIGH,
        replica_down,
        "replica {node} is down",
        "one in-sync replica fewer; min-replicas-to-write is {min_replicas}",
        Leaf("replica-rebuild", "diagnose", "replica.rebuild", "--node {node}", ("node",)),
    ),
    Rule(
        "back-not-replicating",
        HIGH,
        back_not_replicating,
        "{node} came back as an empty primary, not (yet) replicating from {primary}",
        "the old primary back: Sentinel turns it into a replica within ~10 s; if it stays a "
        "primary, treat it as a split-brain",
        Leaf("failover-automatic", "old-primary", "failover.verify", "--old {node}"),
    ),
    Rule(
        "replica-detached",
        HIGH,
        replica_detached,
        "replica {node} is not replicating from {primary} (link down or wrong source)",
        "it serves stale data and is no spare; a rebuild restarts it from the rendered config",
        Leaf("replica-rebuild", "diagnose", "replica.rebuild", "--node {node}", ("node",)),
    ),
    Rule(
        "replica-syncing",
        MEDIUM,
        replica_syncing,
        "replica {node} is in a full sync from {primary}",
        "normal for seconds after a restart; if it repeats, it is a full-sync loop (output "
        "buffer limit or diskless delay): diagnose it",
        Leaf("replica-rebuild", "full-sync", "replica.diagnose", "--node {node}"),
    ),
    Rule(
        "replica-lagging",
        MEDIUM,
        replica_lagging,
        "replica {node} is {lag} bytes behind {primary}",
        "a failover now would lose those writes",
        Leaf("replica-rebuild", "diagnose", "replica.diagnose", "--node {node}"),
    ),
    Rule(
        "quorum-lost",
        HIGH,
        quorum_lost,
        "quorum lost: only {up} Sentinel(s) answer ({down} down)",
        "quorum is {quorum}: if the primary fails now, nothing fails over",
        Leaf(SENTINEL_REPAIR, "start-down", "sentinel.repair"),
    ),
    Rule(
        "sentinels-down",
        _sentinels_down_severity,
        sentinels_down,
        "Sentinel(s) down: {down}",
        "{up} of {n} answer; quorum is {quorum}: restart them (their config keeps their state)",
        Leaf(SENTINEL_REPAIR, "start-down", "sentinel.repair"),
    ),
    Rule(
        "sentinel-not-monitoring",
        HIGH,
        not_monitoring,
        "{sentinel} no longer monitors {master}",
        "it takes no part in failover and tells clients nothing",
        Leaf(SENTINEL_REPAIR, "monitor", "sentinel.repair"),
    ),
    Rule(
        "sentinel-tilt",
        MEDIUM,
        tilt,
        "{sentinel} is in TILT mode",
        "it acts on nothing for 30 s after its clock or scheduling jumped; find why",
        Leaf(SENTINEL_REPAIR, "tilt", "sentinel.repair"),
    ),
    Rule(
        "evicting",
        HIGH,
        evicting,
        "primary {node} is at maxmemory and evicting ({evicted} keys, {policy})",
        "sessions are being dropped to make room",
        Leaf(MEMORY, "measure", "memory.relieve"),
    ),
    Rule(
        "config-drift",
        MEDIUM,
        config_drift,
        "live settings differ from the inventory on {targets}",
        "{drifts}",
        Leaf("config-drift", "list", "config.converge"),
    ),
)
# When no rule matched but the verdict is not healthy: say the problem, point at the check.
FALLBACK = Rule(
    "unexplained",
    MEDIUM,
    unexplained,
    "{problem}",
    "see {status}",
    Leaf("health-check", "overview", "check"),
)
# When no rule matched and the verdict is healthy: nothing is wrong. Who runs `incident` then
# is mostly about to do planned work (a ticket, a patch): the one procedure that keeps every
# session while a node's host goes away is the planned failover.
HEALTHY = Rule(
    "healthy",
    INFO,
    healthy,
    "healthy: nothing is wrong ({primary} is primary with {n} in-sync replica(s))",
    "planned work on {primary}'s host (a patch, a restart, a resize)? move the primary off it "
    "first: the planned failover loses no session",
    Leaf("failover-manual", "preflight", "failover.manual", dry_first=True),
)
# The rules that speak only when the table says nothing.
OTHERWISE = (FALLBACK, HEALTHY)


def triage(
    inv: Inventory, facts: ClusterFacts, health: Health, earlier: ClusterFacts | None = None
) -> list[Finding]:
    """Every finding, most urgent first (table order within a severity); a healthy cluster
    gets one `info` finding. `earlier`: the facts of a look a few seconds before, if any."""
    if health.level == UNKNOWN:  # what we cannot see decides nothing: fix the credentials first
        return [
            Finding(
                CRITICAL,
                "our credentials are refused: the cluster's state is unknown",
                f"check {inv.credential_source()}; nothing here says the cluster is down",
                None,
                f"fix the credentials, then {command('status')}",
                diagnosis="credentials-refused",
            )
        ]
    seen = Seen(inv, facts, health, earlier)
    out = [f for rule in RULES for f in rule.findings(seen)]
    if not out:
        out = list((HEALTHY if health.healthy else FALLBACK).findings(seen))
    out.sort(key=lambda f: f.severity)
    return out


def actionable(findings: list[Finding]) -> list[Finding]:
    """The findings that need doing something (not the `info` ones)."""
    return [f for f in findings if f.severity < INFO]


def leaf_problems(base: Path, tasks: Collection[str]) -> list[str]:
    """Every leaf's runbook exists under `base`, has its step, and its task is one of `tasks`."""
    problems: list[str] = []
    for rule in (*RULES, *OTHERWISE):
        leaf = rule.leaf
        path = base / "runbooks" / f"{leaf.runbook}.md"
        if not path.exists():
            problems.append(f"diagnosis {rule.name}: no runbook {path}")
            continue
        rb, _ = runbookmod.parse(path)
        if rb.step(leaf.step) is None and leaf.step not in _section_slugs(path):
            problems.append(f"diagnosis {rule.name}: {leaf.runbook} has no step {leaf.step!r}")
        if leaf.task not in tasks:
            problems.append(f"diagnosis {rule.name}: no task {leaf.task!r}")
    return problems


def _section_slugs(path: Path) -> set[str]:
    """GitHub's anchors of a runbook's level-2 headings: where a prose-only runbook starts."""
    out = set()
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            words = re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower())
            out.add(words.replace(" ", "-"))
    return out
