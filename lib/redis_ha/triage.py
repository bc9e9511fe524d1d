"""Incident triage: from facts to "what is wrong, and which runbook fixes it" (pure).

The on-call engineer paged at 3 a.m. should not have to map symptoms to procedures under stress.
Each finding names the symptom in plain words, why it matters, and the exact command to run next.
Findings are ordered: what loses sessions or writes first, then what removes redundancy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redis_ha.facts import ClusterFacts
from redis_ha.health import UNKNOWN, Health
from redis_ha.inventory import Inventory

CRITICAL, HIGH, MEDIUM, INFO = 0, 1, 2, 3
SEVERITY_NAMES = {CRITICAL: "critical", HIGH: "high", MEDIUM: "medium", INFO: "info"}

# A primary that came back this recently with no keys while a replica still has data is the
# restart-empty danger (runbooks/safe-restart.md): its replicas are about to be wiped.
RESTART_EMPTY_UPTIME_S = 120


@dataclass
class Finding:
    severity: int
    title: str
    why: str
    runbook: str | None  # procedure name (runbooks/<name>.md)
    command: str | None  # the next command to run
    params: dict[str, Any] = field(default_factory=dict)  # for running the procedure directly

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES[self.severity]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity_name
        return d


def triage(inv: Inventory, facts: ClusterFacts, health: Health) -> list[Finding]:
    """Every finding, most urgent first. An empty list means nothing needs doing."""
    out: list[Finding] = []
    if health.level == UNKNOWN:  # what we cannot see decides nothing: fix the credentials first
        return [
            Finding(
                CRITICAL,
                "our credentials are refused: the cluster's state is unknown",
                f"check {inv.credential_source()}; nothing here says the cluster is down",
                None,
                "fix the credentials, then invoke status",
            )
        ]
    failing_over = [s.name for s in facts.sentinels if s.up and s.failing_over]
    odown = [s.name for s in facts.sentinels if s.up and "o_down" in s.flags]
    s_up = [s for s in facts.sentinels if s.up]

    empty_primary = _restart_empty(facts)
    if empty_primary:
        out.append(
            Finding(
                CRITICAL,
                f"{empty_primary} restarted empty and is still the primary",
                "its replicas will resynchronise from it and lose every session; "
                "stop it or make it a replica now",
                "safe-restart",
                "invoke runbooks.show safe-restart",
            )
        )

    if health.split_brain:
        out.append(
            Finding(
                CRITICAL,
                "split-brain: more than one primary, or Sentinels disagree",
                "writes acknowledged by a stale primary are lost when it is demoted",
                "split-brain",
                "invoke splitbrain.recover --dry-run, then invoke splitbrain.recover",
            )
        )

    if health.primary is None and not health.split_brain:
        if failing_over or odown:
            who = ", ".join(failing_over or odown)
            out.append(
                Finding(
                    CRITICAL,
                    "the primary is down and Sentinel is failing over",
                    f"{who} report it; wait up to failover-timeout "
                    f"({inv.settings.failover_timeout_ms / 1000:.0f} s), then verify",
                    "failover-automatic",
                    "invoke failover.verify",
                )
            )
        elif len(s_up) < inv.settings.quorum:
            out.append(
                Finding(
                    CRITICAL,
                    f"no usable primary and only {len(s_up)} Sentinel(s) answer",
                    f"quorum is {inv.settings.quorum}: Sentinel cannot fail over by itself; "
                    "restore Sentinels, or fall back to the single instance",
                    "rollback",
                    "invoke rollback",
                )
            )
        else:
            out.append(
                Finding(
                    CRITICAL,
                    "no usable primary",
                    "clients cannot write sessions; if it does not recover within minutes, "
                    "roll back to the single instance (30-minute budget)",
                    "failover-automatic",
                    "invoke failover.verify",
                )
            )

    if len(s_up) < len(facts.sentinels):
        down = ", ".join(s.name for s in facts.sentinels if not s.up)
        sev = HIGH if len(s_up) <= inv.settings.quorum else MEDIUM
        out.append(
            Finding(
                sev,
                f"Sentinel(s) down: {down}",
                f"{len(s_up)} of {len(facts.sentinels)} answer; quorum is "
                f"{inv.settings.quorum}: one more loss and failover is impossible"
                if sev == HIGH
                else "automatic failover still works; restore it to regain a spare",
                None,
                "restart the Sentinel (its config keeps its state), then invoke status",
            )
        )

    if health.primary:
        for n in facts.nodes:
            if n.name == health.primary or n.name in health.in_sync_replicas:
                continue
            if n.role == "master":
                continue  # covered by split-brain
            why = n.error if not n.up else _replica_problem(n.replicating_from, n.link_up)
            spare = len(health.in_sync_replicas) > inv.settings.min_replicas_to_write
            sev = MEDIUM if spare else HIGH
            out.append(
                Finding(
                    sev,
                    f"replica {n.name} is not in sync ({why})",
                    f"{len(health.in_sync_replicas)} in-sync replica(s) left; "
                    f"min-replicas-to-write is {inv.settings.min_replicas_to_write}",
                    "replica-rebuild",
                    f"invoke replica.rebuild --node {n.name}",
                    {"node": n.name},
                )
            )

    if not out and not health.healthy:
        for p in health.problems:
            out.append(Finding(MEDIUM, p, "see invoke status", "health-check", "invoke check"))
    out.sort(key=lambda f: f.severity)
    return out


def _replica_problem(source: str | None, link_up: bool | None) -> str:
    if source is None:
        return "not replicating"
    if not link_up:
        return f"link to {source} down"
    return f"replicating from {source}, syncing or behind"


def _restart_empty(facts: ClusterFacts) -> str | None:
    """A primary up for moments with 0 keys while some replica of it still holds data."""
    for p in facts.claimed_primaries():
        if (p.uptime_s or 10**9) > RESTART_EMPTY_UPTIME_S or (p.keys or 0) > 0:
            continue
        for r in facts.nodes:
            if r.up and r.role == "replica" and (r.keys or 0) > 0:
                return p.name
    return None
