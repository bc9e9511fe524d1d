"""General-purpose actions on one node's runtime configuration, each with its undo.

`node.set_config` records the previous value as `config_before` (journaled, so an interrupted
run can still restore it after `--resume`), and `node.restore_config` puts it back. Only settings
that are safe to change at run time are accepted: never auth, addresses, files or replication
targets, which have procedures of their own.
"""

from __future__ import annotations

import redis

from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import call
from redis_ha.errors import ClusterError, HAError
from redis_ha.inventory import Inventory
from redis_ha.plan import Op, Plan, noop
from redis_ha.view import View

SAFE_SETTINGS = (
    "replica-priority",
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "repl-diskless-sync-delay",
    "maxmemory",
    "maxmemory-policy",
    "loglevel",
    "slowlog-log-slower-than",
    "latency-monitor-threshold",
)
SECRET_SETTINGS = ("requirepass", "masterauth")
# Every setting a procedure or a lab fault may change at run time: node.set_config's allow-list,
# what a rebuild or a switchover sets (replica-announced, replica-priority) and what the diverge
# fault breaks (masterauth). The tests put exactly these back after each test.
RUNTIME_SETTINGS = (*SAFE_SETTINGS, "replica-announced", "masterauth")


def _state_key(node: str, parameter: str) -> str:
    return f"{node}:{parameter}"


def _safe(parameter: str) -> None:
    if parameter not in SAFE_SETTINGS:
        raise HAError(
            f"{parameter!r} is not a setting node.set_config may change "
            f"(allowed: {', '.join(SAFE_SETTINGS)})"
        )


def get_config(inv: Inventory, node: str, parameter: str) -> str:
    """The live value of one setting on one node (never a password: those are refused)."""
    ep = inv.node(node)
    try:
        res = call(inv, ep, "CONFIG", "GET", parameter)
    except redis.ResponseError as e:
        raise ClusterError(f"{node}: CONFIG GET {parameter} failed: {e}") from None
    if isinstance(res, dict):
        found = dict(res)
    else:
        found = dict(zip(res[::2], res[1::2], strict=False)) if isinstance(res, list) else {}
    if not found:
        raise ClusterError(f"{node} has no setting {parameter!r}")
    secret = [k for k in found if k in SECRET_SETTINGS]
    if secret:  # checked on the answer: CONFIG GET also takes patterns ('*pass*')
        raise HAError(f"{parameter!r} reads {', '.join(secret)}: passwords are never shown")
    return str(next(iter(found.values())))


def plan_set(view: View, node: str, parameter: str, value: str) -> Plan:
    """CONFIG SET one run-time setting, keeping the value it replaces for the undo."""
    _safe(parameter)  # a dry run refuses what the run would refuse
    before = get_config(view.inv, node, parameter)
    saved = {_state_key(node, parameter): before}
    if before == str(value):
        return noop("node.set_config", f"{node}: {parameter} already {value}", config_before=saved)
    op = Op(node, f"CONFIG SET {parameter} {value}", f"now {before}; not persisted")
    return Plan(
        "node.set_config",
        [op],
        params=_params(node, parameter, value, before),
        record={"config_before": saved},
    )


def _params(node: str, parameter: str, value: str, before: str) -> dict[str, str]:
    return {"node": node, "parameter": parameter, "value": str(value), "before": before}


def _config_set(ctx: Context, plan: Plan) -> Outcome:
    p = plan.params
    try:
        call(ctx.inv, ctx.inv.node(p["node"]), "CONFIG", "SET", p["parameter"], p["value"])
    except redis.ResponseError as e:
        raise ClusterError(
            f"{p['node']}: CONFIG SET {p['parameter']} {p['value']} refused: {e}"
        ) from None
    return Outcome(True, f"{p['node']}: {p['parameter']} {p['before']} -> {p['value']}")


@action("node.set_config", plan=plan_set)
def set_config(ctx: Context, plan: Plan) -> Outcome:
    """CONFIG SET one run-time setting on one node; the old value is kept for the undo."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    return _config_set(ctx, plan)


def plan_restore(view: View, node: str, parameter: str, config_before: dict[str, str]) -> Plan:
    """Put back the value node.set_config saved (`$config_before`) for this node and setting."""
    _safe(parameter)
    saved = config_before.get(_state_key(node, parameter))
    if saved is None:
        raise HAError(f"no saved value of {parameter} on {node} to restore (was it changed?)")
    # From the record alone, not from the live value an earlier step changed: the dry run shows
    # the very operation the run performs (setting a value it already has is harmless).
    op = Op(node, f"CONFIG SET {parameter} {saved}", "the value before this run")
    return Plan("node.restore_config", [op], params=_params(node, parameter, saved, ""))


@action("node.restore_config", plan=plan_restore)
def restore_config(ctx: Context, plan: Plan) -> Outcome:
    """Put back the value node.set_config saved for this node and setting (undo)."""
    p = plan.params
    now = get_config(ctx.inv, p["node"], p["parameter"])
    out = _config_set(ctx, Plan(plan.action, plan.ops, params={**p, "before": now}))
    return Outcome(out.ok, out.message + " (restored)")


@check("node.config_is")
def config_is(view: View, node: str, parameter: str, value: str) -> Outcome:
    """The node's live setting equals `value`."""
    now = get_config(view.inv, node, parameter)
    if now == str(value):
        return Outcome(True, f"{node}: {parameter} is {now}")
    return Outcome(False, f"{node}: {parameter} is {now}, not {value}")
