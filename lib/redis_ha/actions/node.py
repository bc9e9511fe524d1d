"""General-purpose actions on one node's runtime configuration, each with its undo.

`node.set_config` remembers the previous value in ctx.state (journaled, so an interrupted run
can still restore it after `--resume`), and `node.restore_config` puts it back. Only settings
that are safe to change at run time are accepted: never auth, addresses, files or replication
targets, which have procedures of their own.
"""

from __future__ import annotations

import redis

from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import call
from redis_ha.errors import ClusterError, HAError

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


def _state_key(node: str, parameter: str) -> str:
    return f"config_before:{node}:{parameter}"


def _safe(parameter: str) -> None:
    if parameter not in SAFE_SETTINGS:
        raise HAError(
            f"{parameter!r} is not a setting node.set_config may change "
            f"(allowed: {', '.join(SAFE_SETTINGS)})"
        )


def get_config(ctx: Context, node: str, parameter: str) -> str:
    """The live value of one setting on one node (never a password: those are refused)."""
    ep = ctx.inv.node(node)
    try:
        res = call(ctx.inv, ep, "CONFIG", "GET", parameter)
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


def _describe_set(ctx: Context, node: str, parameter: str, value: str) -> str:
    _safe(parameter)  # a dry run refuses what the run would refuse
    try:
        now = get_config(ctx, node, parameter)
    except HAError as e:
        return f"set {parameter} to {value} on {node} (current value unknown: {e})"
    if now == str(value):
        return f"nothing on {node}: {parameter} is already {value}"
    return f"set {parameter} on {node} from {now} to {value} (CONFIG SET, not persisted)"


@action("node.set_config", describe=_describe_set)
def set_config(ctx: Context, node: str, parameter: str, value: str) -> Outcome:
    """CONFIG SET one run-time setting on one node; the old value is kept for the undo."""
    _safe(parameter)
    ep = ctx.inv.node(node)
    before = get_config(ctx, node, parameter)
    ctx.state.setdefault(_state_key(node, parameter), before)
    if before == str(value):
        return Outcome(True, f"{node}: {parameter} already {value}", {"before": before})
    try:
        call(ctx.inv, ep, "CONFIG", "SET", parameter, str(value))
    except redis.ResponseError as e:
        raise ClusterError(f"{node}: CONFIG SET {parameter} {value} refused: {e}") from None
    return Outcome(True, f"{node}: {parameter} {before} -> {value}", {"before": before})


def _describe_restore(ctx: Context, node: str, parameter: str) -> str:
    saved = ctx.state.get(_state_key(node, parameter))
    if saved is None:
        return f"restore {parameter} on {node} to the value saved by an earlier step"
    return f"restore {parameter} on {node} to {saved}"


@action("node.restore_config", describe=_describe_restore)
def restore_config(ctx: Context, node: str, parameter: str) -> Outcome:
    """Put back the value node.set_config saved for this node and setting (undo)."""
    _safe(parameter)
    ep = ctx.inv.node(node)
    key = _state_key(node, parameter)
    saved = ctx.state.get(key)
    if saved is None:
        raise HAError(f"no saved value of {parameter} on {node} to restore (was it changed?)")
    now = get_config(ctx, node, parameter)
    if now != saved:
        try:
            call(ctx.inv, ep, "CONFIG", "SET", parameter, str(saved))
        except redis.ResponseError as e:
            raise ClusterError(f"{node}: CONFIG SET {parameter} {saved} refused: {e}") from None
    ctx.state.pop(key, None)
    return Outcome(True, f"{node}: {parameter} {now} -> {saved} (restored)")


@check("node.config_is")
def config_is(ctx: Context, node: str, parameter: str, value: str) -> Outcome:
    """The node's live setting equals `value`."""
    now = get_config(ctx, node, parameter)
    if now == str(value):
        return Outcome(True, f"{node}: {parameter} is {now}")
    return Outcome(False, f"{node}: {parameter} is {now}, not {value}")
