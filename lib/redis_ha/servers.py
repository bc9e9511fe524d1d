"""Which server a node or Sentinel runs (Redis or Valkey, and which version), and what it offers.

Valkey speaks the same Sentinel protocol, so the runbooks work on both; what differs is reported
here so that a plan can say which path it takes. Pure functions over facts: tested from data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis_ha.facts import ClusterFacts, SentinelFacts

COORDINATED = "COORDINATED"
# Valkey 9.0 added `SENTINEL FAILOVER <primary> COORDINATED`: the Sentinel switches roles with the
# server's own FAILOVER command (the old primary waits for the replica to catch up), instead of
# promoting as if the primary were down. Used only where a Sentinel cannot show its command docs.
COORDINATED_SINCE = {"valkey": (9, 0)}


def identity(info: Mapping[str, Any]) -> tuple[str, str | None]:
    """(server name, its own version) from INFO server.

    Valkey reports `server_name:valkey` and `valkey_version:8.1.8` beside `redis_version:7.2.4`,
    kept for clients that check it: reading redis_version alone calls Valkey 8.1 "Redis 7.2".
    """
    name = str(info.get("server_name") or "redis").lower()
    version = info.get(f"{name}_version") or info.get("redis_version")
    return name, str(version) if version else None


def version_tuple(version: str | None) -> tuple[int, ...]:
    """Versions compared as numbers: "8.1.8" -> (8, 1, 8), "9.0.0-rc1" -> (9, 0, 0)."""
    out: list[int] = []
    for part in (version or "").split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
        if m.group() != part:
            break
    return tuple(out)


def label(server: str | None, version: str | None) -> str:
    """ "valkey 8.1.8", or "-" when the process did not answer."""
    return f"{server} {version}" if server and version else "-"


def sentinel_coordinated(s: SentinelFacts) -> tuple[bool | None, str]:
    """Does this Sentinel accept `SENTINEL FAILOVER <master> COORDINATED`? (yes/no/unknown, why)

    Its own command docs decide (COMMAND DOCS sentinel|failover, read-only: it never starts a
    failover); a Sentinel that cannot show them (Redis before 7.0, an ACL) is judged by version.
    """
    who = f"{s.name} ({label(s.server, s.version)})"
    if not s.up:
        return None, f"{s.name} is down: cannot tell"
    if s.failover_options is not None:
        if COORDINATED in s.failover_options:
            return True, f"{who} lists SENTINEL FAILOVER ... COORDINATED"
        return False, f"{who}: SENTINEL FAILOVER has no COORDINATED option"
    since = COORDINATED_SINCE.get(s.server or "")
    if since is None or not s.version:
        return False, f"{who}: this server has no coordinated Sentinel failover"
    if version_tuple(s.version) >= since:
        return True, f"{who}: {s.server} {'.'.join(map(str, since))}+ has it"
    return False, f"{who}: needs {s.server} {'.'.join(map(str, since))} or later"


@dataclass(frozen=True)
class Capability:
    """Whether the cluster offers a feature, and the reason for each Sentinel that decides it."""

    name: str
    available: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coordinated_failover(facts: ClusterFacts) -> Capability:
    """Every Sentinel accepts `SENTINEL FAILOVER <master> COORDINATED` (Valkey 9+).

    Every one, not just the one asked: the coordinated failover elects a leader among them, and
    a Sentinel that is down or older makes the outcome unknown, so the answer is then "no".
    """
    verdicts = [sentinel_coordinated(s) for s in facts.sentinels]
    ok = bool(verdicts) and all(v is True for v, _ in verdicts)
    reasons = tuple(why for v, why in verdicts if v is not True) or tuple(w for _, w in verdicts)
    return Capability(name="coordinated-failover", available=ok, reasons=reasons)
