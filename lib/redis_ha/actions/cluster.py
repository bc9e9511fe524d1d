"""Common checks every procedure guards and verifies with: read-only predicates over fresh facts.

Each check gathers its own facts (a fresh look is what a guard is for) and says in plain words
what it saw, so a refused guard tells the operator what is wrong, not just that something is.
Node arguments are stable inventory names; an unknown name is an `InventoryError`.
"""

from __future__ import annotations

import os
import socket

import redis

from redis_ha import ui
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import client, describe_error
from redis_ha.errors import ClusterError
from redis_ha.facts import ClusterFacts, NodeFacts
from redis_ha.health import Health, assess

PROBE_KEY = "redis-ha-runbooks:probe"
PROBE_TTL_MS = 5000
IN_SYNC_MAX_LAG_BYTES = 0


def current_primary(ctx: Context) -> tuple[ClusterFacts, Health, NodeFacts]:
    """Facts, verdict and the usable primary (named by a Sentinel majority), or ClusterError."""
    f, h = ctx.health()
    if h.primary is None:
        why = "; ".join(h.problems) or "no Sentinel majority names a primary"
        raise ClusterError(f"no usable primary: {why}")
    return f, h, f.node(h.primary)


def _problems(h: Health, limit: int = 3) -> str:
    shown = h.problems[:limit]
    more = f" (+{len(h.problems) - limit} more)" if len(h.problems) > limit else ""
    return "; ".join(shown) + more


@check("cluster.healthy")
def healthy(ctx: Context) -> Outcome:
    """The whole cluster is healthy: one primary, every replica in sync, Sentinels agree."""
    f, h = ctx.health()
    data = {"level": h.level, "primary": h.primary, "problems": h.problems}
    if h.healthy:
        n = len(h.in_sync_replicas)
        return Outcome(True, f"healthy: primary {h.primary}, {n} replica(s) in sync", data)
    return Outcome(False, f"{h.level}: {_problems(h)}", data)


@check("cluster.quorum_ok")
def quorum_ok(ctx: Context) -> Outcome:
    """Enough Sentinels are up and agree to authorise a failover (SENTINEL CKQUORUM)."""
    f, h = ctx.health()
    up = [s.name for s in f.sentinels if s.up]
    need = ctx.inv.settings.quorum
    data = {"sentinels_up": up, "quorum": need}
    if h.quorum_ok:
        return Outcome(True, f"quorum OK: {len(up)} of {len(f.sentinels)} Sentinels up", data)
    msg = next((s.quorum_msg for s in f.sentinels if s.up and s.quorum_msg), None)
    why = f" ({msg})" if msg and not msg.startswith("OK") else ""
    return Outcome(
        False,
        f"no quorum: {len(up)} of {len(f.sentinels)} Sentinels up, quorum {need} needed{why}",
        data,
    )


@check("cluster.sentinels_agree")
def sentinels_agree(ctx: Context) -> Outcome:
    """Every listed Sentinel is up and names the same primary."""
    f = ctx.facts(detail=False)
    down = [s.name for s in f.sentinels if not s.up]
    views = {s.name: s.primary_name or "nothing" for s in f.sentinels if s.up}
    data = {"views": views, "down": down}
    if down:
        errors = {s.error or "no answer" for s in f.sentinels if not s.up}
        why = (
            errors.pop()
            if len(errors) == 1
            else "; ".join(f"{s.name}: {s.error}" for s in f.sentinels if not s.up)
        )
        return Outcome(False, f"Sentinel(s) not answering: {', '.join(down)} ({why})", data)
    if len(set(views.values())) != 1:
        said = ", ".join(f"{k} says {v}" for k, v in sorted(views.items()))
        return Outcome(False, f"Sentinels disagree: {said}", data)
    primary = next(iter(views.values()))
    return Outcome(True, f"all {len(views)} Sentinels name {primary} as primary", data)


@check("cluster.no_failover_in_progress")
def no_failover_in_progress(ctx: Context) -> Outcome:
    """No Sentinel is in the middle of a failover (acting now would race it)."""
    f = ctx.facts(detail=False)
    busy = {
        s.name: s.failover_state or "failover_in_progress"
        for s in f.sentinels
        if s.up and s.failing_over
    }
    if busy:
        said = ", ".join(f"{k}: {v}" for k, v in sorted(busy.items()))
        return Outcome(False, f"failover in progress ({said})", {"busy": busy})
    return Outcome(True, "no failover in progress", {})


@check("cluster.single_primary")
def single_primary(ctx: Context) -> Outcome:
    """Exactly one reachable node says it is a primary (no split-brain)."""
    f = ctx.facts(detail=False)
    claimed = [n.name for n in f.claimed_primaries()]
    data = {"primaries": claimed}
    if len(claimed) == 1:
        return Outcome(True, f"one primary: {claimed[0]}", data)
    if not claimed:
        return Outcome(False, "no reachable node says it is primary", data)
    return Outcome(False, f"{len(claimed)} nodes say they are primary: {', '.join(claimed)}", data)


@check("cluster.writes_accepted")
def writes_accepted(ctx: Context) -> Outcome:
    """A probe SET with a short TTL on the current primary succeeds (writes are not refused)."""
    try:
        _, _, p = current_primary(ctx)
    except ClusterError as e:
        return Outcome(False, str(e), {})
    if ctx.dry_run:
        return Outcome(True, f"would write a probe key on {p.name} (skipped: dry run)", {})
    ep = ctx.inv.node(p.name)
    c = client(ctx.inv, ep, timeout=1.0)
    value = f"{socket.gethostname()}:{os.getpid()}"
    try:
        c.set(PROBE_KEY, value, px=PROBE_TTL_MS)
    except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError, OSError) as e:
        return Outcome(False, f"{p.name} refused a probe write: {describe_error(e)}", {})
    finally:
        c.close()
    return Outcome(True, f"{p.name} accepted a probe write", {"primary": p.name})


@check("cluster.replicas_in_sync")
def replicas_in_sync(ctx: Context) -> Outcome:
    """Every node but the primary is up and an in-sync replica of it."""
    try:
        f, h, p = current_primary(ctx)
    except ClusterError as e:
        return Outcome(False, str(e))
    others = [n.name for n in f.nodes if n.name != p.name]
    behind = [n for n in others if n not in h.in_sync_replicas]
    data = {"primary": p.name, "in_sync": h.in_sync_replicas, "not_in_sync": behind}
    if behind:
        why = [x for x in h.problems if any(b in x for b in behind)]
        return Outcome(False, "; ".join(why) or f"not in sync: {', '.join(behind)}", data)
    return Outcome(True, f"{', '.join(others)} in sync with {p.name}", data)


def _describe_status(ctx: Context) -> str:
    return "print the status tables of every node and Sentinel (read-only)"


@action("cluster.show_status", changes=False, describe=_describe_status)
def show_status(ctx: Context) -> Outcome:
    """Print the status tables (nodes, Sentinels, verdict): read-only."""
    f, h = ctx.health()
    ui.status_tables(f, h)
    return Outcome(True, f"{h.level}: primary {h.primary or 'none'}", {"level": h.level})


def _node(ctx: Context, node: str) -> tuple[ClusterFacts, NodeFacts]:
    ctx.inv.node(node)  # unknown names -> InventoryError listing the known ones
    f = ctx.facts(detail=False)
    return f, f.node(node)


@check("node.up")
def node_up(ctx: Context, node: str) -> Outcome:
    """The node answers (with the inventory's password)."""
    _, n = _node(ctx, node)
    if n.up:
        return Outcome(True, f"{node} is up ({n.role})", {"role": n.role})
    return Outcome(False, f"{node} is down: {n.error}", {"error": n.error})


@check("node.is_replica")
def node_is_replica(ctx: Context, node: str) -> Outcome:
    """The node is up and a replica (of anything)."""
    _, n = _node(ctx, node)
    if not n.up:
        return Outcome(False, f"{node} is down: {n.error}")
    if n.role == "replica":
        return Outcome(True, f"{node} is a replica of {n.replicating_from}")
    return Outcome(False, f"{node} is a {n.role}, not a replica")


@check("node.in_sync")
def node_in_sync(ctx: Context, node: str, max_lag_bytes: int = IN_SYNC_MAX_LAG_BYTES) -> Outcome:
    """The node replicates from the current primary, link up, not syncing, offset caught up."""
    ctx.inv.node(node)
    try:
        f, _, p = current_primary(ctx)
    except ClusterError as e:
        return Outcome(False, str(e))
    n = f.node(node)
    data = {"primary": p.name, "offset": n.offset, "primary_offset": p.offset}
    if not n.up:
        return Outcome(False, f"{node} is down: {n.error}", data)
    if n.name == p.name:
        return Outcome(False, f"{node} is the primary, not a replica", data)
    if n.role != "replica" or n.replicating_from != p.name:
        src = n.replicating_from if n.role == "replica" else "nothing (it is a primary)"
        return Outcome(False, f"{node} replicates from {src}, not from {p.name}", data)
    if not n.link_up:
        return Outcome(False, f"{node}: replication link to {p.name} is down", data)
    if n.sync_in_progress or n.loading:
        return Outcome(False, f"{node}: full sync from {p.name} in progress", data)
    lag = (p.offset or 0) - (n.offset or 0)
    data["lag_bytes"] = lag
    if lag > max_lag_bytes:
        return Outcome(False, f"{node} is {lag} bytes behind {p.name}", data)
    return Outcome(True, f"{node} is in sync with {p.name} ({max(lag, 0)} bytes behind)", data)


@check("node.not_primary")
def node_not_primary(ctx: Context, node: str) -> Outcome:
    """The node is not the primary the Sentinels name and does not claim to be one."""
    f, n = _node(ctx, node)
    h = assess(ctx.inv, f)
    if h.primary == node:
        return Outcome(False, f"{node} is the current primary")
    if n.up and n.role == "master":
        return Outcome(False, f"{node} says it is a primary (not named by the Sentinels)")
    return Outcome(True, f"{node} is not a primary ({n.role or 'down'})")
