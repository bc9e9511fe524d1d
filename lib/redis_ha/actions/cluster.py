"""Common checks every procedure guards and verifies with: read-only predicates over one view.

Each check judges the view of its round (the runner takes one per guard round and per verify
poll) and says in plain words what it saw, so a refused guard tells the operator what is wrong,
not just that something is. Node arguments are stable inventory names; an unknown name is an
`InventoryError`.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import redis

from redis_ha import health as healthmod
from redis_ha import ui
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import client, describe_error
from redis_ha.errors import HAError
from redis_ha.health import Health
from redis_ha.plan import Plan, reads
from redis_ha.view import View

PROBE_KEY = "redis-ha-runbooks:probe"
PROBE_TTL_MS = 5000


def _problems(h: Health, limit: int = 3) -> str:
    shown = h.problems[:limit]
    more = f" (+{len(h.problems) - limit} more)" if len(h.problems) > limit else ""
    return "; ".join(shown) + more


@check("cluster.healthy")
def healthy(view: View) -> Outcome:
    """The whole cluster is healthy: one primary, every replica in sync, Sentinels agree."""
    h = view.health
    data = {"level": h.level, "primary": h.primary, "problems": h.problems}
    if h.healthy:
        n = len(h.in_sync_replicas)
        return Outcome(True, f"healthy: primary {h.primary}, {n} replica(s) in sync", data)
    return Outcome(False, f"{h.level}: {_problems(h)}", data)


@check("cluster.quorum_ok")
def quorum_ok(view: View) -> Outcome:
    """Enough Sentinels are up and agree to authorise a failover (SENTINEL CKQUORUM)."""
    f, h = view.facts, view.health
    up = [s.name for s in f.sentinels if s.up]
    need = view.inv.settings.quorum
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
def sentinels_agree(view: View) -> Outcome:
    """Every listed Sentinel is up and names the same primary."""
    f = view.facts
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
def no_failover_in_progress(view: View) -> Outcome:
    """No Sentinel is in the middle of a failover (acting now would race it)."""
    f = view.facts
    busy = {
        s.name: s.failover_state or "failover_in_progress"
        for s in f.sentinels
        if s.up and s.failing_over
    }
    if busy:
        said = ", ".join(f"{k}: {v}" for k, v in sorted(busy.items()))
        return Outcome(False, f"failover in progress ({said})", {"busy": busy})
    return Outcome(True, "no failover in progress", {})


@check("cluster.one_node_claims_primary")
def one_node_claims_primary(view: View) -> Outcome:
    """Exactly one reachable node says it is a primary (no split-brain)."""
    claimed = [n.name for n in view.facts.claimed_primaries()]
    data = {"primaries": claimed}
    if len(claimed) == 1:
        return Outcome(True, f"one primary: {claimed[0]}", data)
    if not claimed:
        return Outcome(False, "no reachable node says it is primary", data)
    return Outcome(False, f"{len(claimed)} nodes say they are primary: {', '.join(claimed)}", data)


@check("cluster.writes_accepted")
def writes_accepted(view: View) -> Outcome:
    """A probe SET with a short TTL on the current primary succeeds (writes are not refused)."""
    p = view.primary()
    if view.dry_run:
        return Outcome(True, f"would write a probe key on {p.name} (skipped: dry run)", {})
    ep = view.inv.node(p.name)
    c = client(view.inv, ep, timeout=1.0)
    value = f"{socket.gethostname()}:{os.getpid()}"
    try:
        c.set(PROBE_KEY, value, px=PROBE_TTL_MS)
    except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError, OSError) as e:
        return Outcome(False, f"{p.name} refused a probe write: {describe_error(e)}", {})
    finally:
        c.close()
    return Outcome(True, f"{p.name} accepted a probe write", {"primary": p.name})


@check("cluster.all_replicas_in_sync")
def all_replicas_in_sync(view: View) -> Outcome:
    """Every node but the primary is up and an in-sync replica of it (none may be down)."""
    p = view.primary()
    f, h = view.facts, view.health
    others = [n.name for n in f.nodes if n.name != p.name]
    behind = [n for n in others if n not in h.in_sync_replicas]
    data = {"primary": p.name, "in_sync": h.in_sync_replicas, "not_in_sync": behind}
    if behind:
        why = [x for x in h.problems if any(b in x for b in behind)]
        return Outcome(False, "; ".join(why) or f"not in sync: {', '.join(behind)}", data)
    return Outcome(True, f"{', '.join(others)} in sync with {p.name}", data)


def plan_status(view: View) -> Plan:
    """Print the status tables of every node and Sentinel."""
    return reads("cluster.show_status", "cluster", "INFO / SENTINEL MASTER on every endpoint")


@action("cluster.show_status", plan=plan_status, changes=False)
def show_status(ctx: Context, plan: Plan) -> Outcome:
    """Print the status tables (nodes, Sentinels, verdict): read-only."""
    v = ctx.view()
    ui.status_tables(v.facts, v.health)
    h = v.health
    return Outcome(True, f"{h.level}: primary {h.primary or 'none'}", {"level": h.level})


@check("node.up")
def node_up(view: View, node: str) -> Outcome:
    """The node answers (with the inventory's password)."""
    n = view.node(node)
    if n.up:
        return Outcome(True, f"{node} is up ({n.role})", {"role": n.role})
    return Outcome(False, f"{node} is down: {n.error}", {"error": n.error})


@check("node.controllable")
def node_controllable(view: View, node: str) -> Outcome:
    """The node's control backend reaches it (asks whether its process runs): a procedure that
    will restart it refuses here, before its first change, when the host, the key, the host key
    or the platform's CLI would fail it halfway."""
    from redis_ha import control

    ep = view.inv.node(node)
    try:
        ctl = control.for_node(view.inv, ep)
        running = ctl.is_running(ep)
    except HAError as e:
        return Outcome(False, str(e))
    state = "runs" if running else "does not run"
    return Outcome(True, f"{node}: the {ctl.backend} backend answers (its process {state})")


@check("node.is_replica")
def node_is_replica(view: View, node: str) -> Outcome:
    """The node is up and a replica (of anything)."""
    n = view.node(node)
    if not n.up:
        return Outcome(False, f"{node} is down: {n.error}")
    if n.role == "replica":
        return Outcome(True, f"{node} is a replica of {n.replicating_from}")
    return Outcome(False, f"{node} is a {n.role}, not a replica")


@check("node.in_sync")
def node_in_sync(
    view: View, node: str, max_lag_bytes: int = healthmod.IN_SYNC_MAX_LAG_BYTES
) -> Outcome:
    """The node replicates from the current primary, link up, not syncing, offset caught up."""
    n = view.node(node)
    p = view.primary()
    data: dict[str, Any] = {"primary": p.name, "offset": n.offset, "primary_offset": p.offset}
    data["lag_bytes"] = lag = healthmod.lag_bytes(n, p)
    why = healthmod.sync_problem(n, p, max_lag_bytes)
    if why:
        return Outcome(False, why, data)
    return Outcome(True, f"{node} is in sync with {p.name} ({lag} bytes behind)", data)


@check("node.not_primary")
def node_not_primary(view: View, node: str) -> Outcome:
    """The node is not the primary the Sentinels name and does not claim to be one."""
    n = view.node(node)
    if view.health.primary == node:
        return Outcome(False, f"{node} is the current primary")
    if n.up and n.role == "master":
        return Outcome(False, f"{node} says it is a primary (not named by the Sentinels)")
    return Outcome(True, f"{node} is not a primary ({n.role or 'down'})")
