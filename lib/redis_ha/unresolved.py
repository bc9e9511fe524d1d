"""Sentinels that cannot resolve a node's name: redis/redis#11241, and the guard against it.

A stopped Railway service's private name stops resolving (so does a removed container's on a
Docker network). Sentinel, told to resolve hostnames, then logs `Failed to resolve hostname
'redis-1'` about once a second and, measured in the Docker lab, in 2 of 3 runs had not failed
over 40 s after the primary went down; a forced `SENTINEL FAILOVER` promoted a replica but did not
complete. A switchover or a rebuild started then only takes more away (runbooks/
failover-automatic.md, "A down node's name no longer resolves"). The decision is pure (log
lines in, names out) so it is tested from text; `read` gets the lines through each Sentinel's
log (its control backend).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence

from redis_ha import sentinel_events
from redis_ha.inventory import Inventory

FAILED_RE = re.compile(r"Failed to resolve hostname '([^']+)'")
WINDOW_S = 60.0  # Sentinel logs the failure about once a second while it lasts
LOG_LINES = 300
RUNBOOK = 'runbooks/failover-automatic.md, section "A down node\'s name no longer resolves"'


def failing(
    logs: Mapping[str, Sequence[str]], now: float, window_s: float = WINDOW_S
) -> dict[str, dict[str, float]]:
    """{hostname: {sentinel: time of its last failure}} for the failures of the last `window_s`."""
    found: dict[str, dict[str, float]] = {}
    for sentinel, lines in logs.items():
        for line in lines:
            st = sentinel_events.stamped(line)
            m = FAILED_RE.search(st[1]) if st else None
            if st is None or m is None or now - st[0] > window_s:
                continue
            seen = found.setdefault(m[1], {})
            seen[sentinel] = max(st[0], seen.get(sentinel, 0.0))
    return found


def node_name(inv: Inventory, hostname: str) -> str:
    """The inventory's name for a host Sentinel failed to resolve (the host itself if none)."""
    ep = next((e for e in inv.nodes if hostname in (e.host, e.announced[0], e.name)), None)
    return ep.name if ep else hostname


def refusal(inv: Inventory, found: Mapping[str, Mapping[str, float]], now: float) -> str | None:
    """The one line a guard refuses with, or None when no Sentinel fails to resolve a node."""
    if not found:
        return None
    parts = []
    for host, by in sorted(found.items()):
        ago = max(0.0, now - max(by.values()))  # clocks of two hosts may differ a little
        who = ", ".join(sorted(by))
        parts.append(f"{who} cannot resolve {node_name(inv, host)} ({host!r}, {ago:.0f} s ago)")
    return (
        "; ".join(parts) + ": Sentinel cannot fail over while a down node's name does not "
        f"resolve (redis/redis#11241); fix that first, see {RUNBOOK}"
    )


def read(inv: Inventory, lines: int = LOG_LINES) -> tuple[dict[str, list[str]], list[str]]:
    """Every Sentinel's recent log, and the Sentinels whose log could not be read."""
    logs: dict[str, list[str]] = {}
    missing: list[str] = []
    for s in inv.sentinels:
        text = sentinel_events.read_log(inv, s, lines)
        if text is None:
            missing.append(s.name)
        else:
            logs[s.name] = text
    return logs, missing


def verdict(
    inv: Inventory,
    logs: Mapping[str, Sequence[str]],
    now: float,
    *,
    missing: Sequence[str] = (),
    allow: str | None = None,
) -> tuple[bool, str]:
    """(ok, what was seen) from the Sentinels' logs. `allow` is the node a procedure is about to
    bring back (a rebuild of the very node is the fix), so its failures do not refuse."""
    every = failing(logs, now)
    found = {h: by for h, by in every.items() if node_name(inv, h) != allow}
    why = refusal(inv, found, now)
    if why:
        return False, why
    unread = f" (logs of {', '.join(missing)} not readable: not checked there)" if missing else ""
    but = f" but {allow}, which this run brings back" if len(found) < len(every) else ""
    return True, f"every Sentinel resolves every node's name{but}{unread}"


def check(inv: Inventory, *, allow: str | None = None) -> tuple[bool, str]:
    """The guard's verdict from each Sentinel's log of now."""
    logs, missing = read(inv)
    return verdict(inv, logs, time.time(), missing=missing, allow=allow)
