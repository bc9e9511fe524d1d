"""Repairs `incident` leads to: Sentinels back and monitoring, settings back to the inventory,
writes unpaused. Each plans from one view which targets need it, and says why when none do.

Settings are put back only within `node.SAFE_SETTINGS` (and Sentinel's own per-master
settings): a drift in anything else (persistence, `save`) is listed for a person to decide.
"""

from __future__ import annotations

import redis

from redis_ha import control, failpoint
from redis_ha import drift as driftmod
from redis_ha.actions.node import SAFE_SETTINGS
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import call
from redis_ha.errors import ClusterError
from redis_ha.plan import Op, Plan, noop, reads
from redis_ha.triage import NOT_MONITORING, named_primaries
from redis_ha.view import View

SENTINEL_SETTINGS = ("down-after-milliseconds", "failover-timeout", "parallel-syncs", "quorum")


def _each(action: str, targets: list[str], command: str, why: str, none: str) -> Plan:
    """One operation per target, or a no-op saying why no target needs it."""
    if not targets:
        return noop(action, none)
    return Plan(action, [Op(t, command, why) for t in targets], params={"targets": targets})


def _send(ctx: Context, op: Op, args: list[str] | None = None) -> None:
    """Run an operation's command (or `args`, the command with its secret) on its target."""
    sentinels = {s.name for s in ctx.inv.sentinels}
    ep = ctx.inv.sentinel(op.target) if op.target in sentinels else ctx.inv.node(op.target)
    try:
        call(ctx.inv, ep, *(args or op.command.split()))
    except redis.ResponseError as e:
        raise ClusterError(f"{op.target}: {op.command} refused: {e}") from None


def _done(plan: Plan, verb: str) -> Outcome:
    return Outcome(True, plan.noop or f"{verb} {', '.join(plan.params.get('targets', []))}")


def plan_start_sentinels(view: View) -> Plan:
    """Start every Sentinel that does not answer, through its control backend (its own config
    file keeps its state: epoch, known Sentinels and replicas)."""
    down = [s.name for s in view.facts.sentinels if not s.up]
    start = "start (control backend, its own sentinel.conf)"
    return _each("sentinel.start_down", down, start, "does not answer", "every Sentinel answers")


@action("sentinel.start_down", plan=plan_start_sentinels)
def start_sentinels(ctx: Context, plan: Plan) -> Outcome:
    """Start every Sentinel the plan found down."""
    for op in plan.ops:
        ep = ctx.inv.sentinel(op.target)
        control.for_node(ctx.inv, ep).start_sentinel(ep)
        failpoint.changed(f"started {op.target}")
        ctx.log(f"{op.target}: started")
    return _done(plan, "started")


def _remonitor_ops(view: View) -> list[Op]:
    """For each Sentinel that monitors the master with per-master settings other than the
    inventory's (what an interrupted `sentinel.monitor` leaves: SENTINEL MONITOR done, the
    SENTINEL SETs not, so Sentinel's defaults and no auth-pass): the password, then those."""
    drifted, _ = _drift_ops(view, ",".join(SENTINEL_SETTINGS))
    ops: list[Op] = []
    for target in dict.fromkeys(op.target for op in drifted):
        ops += [Op(target, c, "monitors it with other settings") for c in _auth_pass(view)]
        ops += [op for op in drifted if op.target == target]
    return ops


def _auth_pass(view: View) -> list[str]:
    m = view.inv.master_name
    return [f"SENTINEL SET {m} auth-pass ***"] if view.inv.password() else []


def plan_monitor(view: View) -> Plan:
    """SENTINEL MONITOR the majority's primary on every Sentinel that no longer monitors it,
    with the inventory's settings and the password (shown as ***); one that monitors it with
    other settings (a monitor cut half-way never sees the replicas: no auth-pass) gets the
    password and the inventory's settings again (a fault test found it left so on resume)."""
    lost = [s.name for s in view.facts.sentinels if s.up and s.error and NOT_MONITORING in s.error]
    fix = _remonitor_ops(view)
    half = list(dict.fromkeys(op.target for op in fix))
    m = view.inv.master_name
    if not lost and not fix:
        return noop("sentinel.monitor", f"every answering Sentinel monitors {m}")
    if not lost:
        return Plan("sentinel.monitor", fix, params={"targets": half})
    # What the monitoring Sentinels name, not a majority of all: the step before may just have
    # started the others, and the dry run must plan what the run will.
    named = named_primaries(view.facts)
    claimed = {n.name for n in view.facts.claimed_primaries()}
    if len(named) != 1 or not named <= claimed:
        raise ClusterError(
            f"the monitoring Sentinels name {sorted(named) or 'no primary'} and "
            f"{sorted(claimed) or 'no node'} claims it: no primary to monitor "
            "(runbooks/split-brain.md if they disagree)"
        )
    host, port = view.inv.node(next(iter(named))).host, view.inv.node(next(iter(named))).port
    cmds = [f"SENTINEL MONITOR {m} {host} {port} {view.inv.settings.quorum}", *_auth_pass(view)]
    want = driftmod.expected_sentinel_config(view.inv.settings)
    cmds += [f"SENTINEL SET {m} {k} {want[k]}" for k in SENTINEL_SETTINGS if k != "quorum"]
    ops = [Op(n, c, "does not monitor it") for n in lost for c in cmds]
    return Plan("sentinel.monitor", ops + fix, params={"targets": lost + half})


@action("sentinel.monitor", plan=plan_monitor)
def monitor(ctx: Context, plan: Plan) -> Outcome:
    """Make the Sentinels the plan found monitor the primary again."""
    pw = ctx.inv.password() or ""
    for op in plan.ops:
        args = op.command.split()
        _send(ctx, op, [*args[:-1], pw] if args[-1] == "***" else args)
    return _done(plan, f"monitoring {ctx.inv.master_name} again:")


@check("sentinel.all_up")
def all_up(view: View, monitoring: bool = True) -> Outcome:
    """Every listed Sentinel answers (and, with `monitoring`, monitors the master)."""
    bad = [s.name for s in view.facts.sentinels if not s.up or (monitoring and s.error)]
    what = "answering or monitoring" if monitoring else "answering"
    if bad:
        return Outcome(False, f"not {what}: {', '.join(bad)}")
    return Outcome(True, f"all {len(view.facts.sentinels)} Sentinels {what.replace('ing', '')}")


@check("sentinel.not_tilted")
def not_tilted(view: View) -> Outcome:
    """No answering Sentinel is in TILT mode."""
    tilted = [s.name for s in view.facts.sentinels if s.up and s.tilt]
    if tilted:
        return Outcome(False, f"in TILT: {', '.join(tilted)}")
    return Outcome(True, "no Sentinel in TILT")


def _drift_ops(view: View, only: str) -> tuple[list[Op], list[str]]:
    """CONFIG SET / SENTINEL SET putting back each drifted setting; the ones left to people."""
    keep = {k.strip() for k in only.split(",") if k.strip()}
    drifts, _ = driftmod.find_drift(view.inv, view.facts)
    ops: list[Op] = []
    by_hand: list[str] = []
    sentinels = {s.name for s in view.inv.sentinels}
    for d in drifts:
        if keep and d.setting not in keep:
            continue
        why = f"now {d.actual!r}"
        if d.target in sentinels and d.setting in SENTINEL_SETTINGS:
            cmd = f"SENTINEL SET {view.inv.master_name} {d.setting} {d.expected}"
            ops.append(Op(d.target, cmd, why))
        elif d.target not in sentinels and d.setting in SAFE_SETTINGS:
            ops.append(Op(d.target, f"CONFIG SET {d.setting} {d.expected}", why))
        else:
            by_hand.append(str(d))
    return ops, by_hand


def plan_converge(view: View, only: str = "", rewrite: list[str] | None = None) -> Plan:
    """Put every drifted run-time setting back to the inventory's value (`only`: a comma list
    of settings to limit it to), and CONFIG REWRITE each node changed, so a restart keeps it.

    Sentinel's own CONFIG REWRITE of every node it reconfigures persists a drift, and a node
    restarted from that file came back drifted (found by a fault test). `rewrite` (recorded
    as `$converged`) names the nodes an interrupted attempt changed: their live values match
    now, their files may not, so a resume rewrites them too. SENTINEL SET needs nothing: a
    Sentinel rewrites its own file."""
    ops, by_hand = _drift_ops(view, only)
    up = {n.name for n in view.facts.nodes if n.up}
    changed = list(dict.fromkeys(op.target for op in ops if op.target in up))
    pending = [n for n in rewrite or [] if n in up and n not in changed]
    if not ops and not pending:
        left = f"; by hand: {'; '.join(by_hand)}" if by_hand else ""
        return noop("config.converge", "live settings match the inventory" + left)
    last = {op.target: i for i, op in enumerate(ops) if op.target in up}  # nodes, not Sentinels
    saved: list[Op] = []
    for i, op in enumerate(ops):
        saved += [op, Op(op.target, REWRITE, PERSIST)] if last.get(op.target) == i else [op]
    saved += [Op(n, REWRITE, "an interrupted converge changed it; " + PERSIST) for n in pending]
    record = {"converged": list(dict.fromkeys([*(rewrite or []), *changed]))}
    return Plan("config.converge", saved, params={"by_hand": by_hand}, record=record)


REWRITE = "CONFIG REWRITE"
PERSIST = "a restart keeps it (best effort: no file, or a read-only one)"


@action("config.converge", plan=plan_converge)
def converge(ctx: Context, plan: Plan) -> Outcome:
    """CONFIG SET / SENTINEL SET the inventory's values where they drifted, and CONFIG REWRITE
    each node that changed (best effort: a refusal is reported, the live repair stands)."""
    unsaved: list[str] = []
    for op in plan.ops:
        if op.command != REWRITE:
            _send(ctx, op)
            continue
        try:
            call(ctx.inv, ctx.inv.node(op.target), *REWRITE.split())
        except redis.ResponseError:
            unsaved.append(op.target)
    left = plan.params.get("by_hand") or []
    n = sum(op.command != REWRITE for op in plan.ops)
    msg = plan.noop or f"{n} setting(s) back to the inventory's values"
    if unsaved:
        msg += f"; config file not rewritten on {', '.join(unsaved)} (a restart undoes it)"
    return Outcome(True, msg + (f"; by hand: {'; '.join(left)}" if left else ""))


@check("config.no_drift")
def no_drift(view: View, only: str = "") -> Outcome:
    """No run-time setting differs from the inventory (`only`: limited to these settings)."""
    keep = {k.strip() for k in only.split(",") if k.strip()}
    drifts, _ = driftmod.find_drift(view.inv, view.facts)
    drifts = [d for d in drifts if not keep or d.setting in keep]
    if drifts:
        return Outcome(False, "; ".join(str(d) for d in drifts))
    return Outcome(True, "live settings match the inventory")


@check("node.memory_ok")
def memory_ok(view: View) -> Outcome:
    """The primary is below its maxmemory (or has none)."""
    p = view.primary()
    used, limit = p.used_memory or 0, p.maxmemory or 0
    if limit and used >= limit:
        return Outcome(False, f"{p.name} uses {used} of maxmemory {limit} bytes")
    return Outcome(True, f"{p.name} uses {used} bytes (maxmemory {limit or 'none'})")


def _paused(view: View) -> list[str]:
    return [n.name for n in view.facts.nodes if n.up and n.writes_paused]


def plan_unpause(view: View) -> Plan:
    """CLIENT UNPAUSE every node whose writes stall (a pause left by an interrupted step)."""
    why, none = "a write probe stalled", "no node holds writes back"
    return _each("writes.unpause", _paused(view), "CLIENT UNPAUSE", why, none)


@action("writes.unpause", plan=plan_unpause)
def unpause(ctx: Context, plan: Plan) -> Outcome:
    """Lift the pause on every node the plan found paused."""
    for op in plan.ops:
        _send(ctx, op)
    return _done(plan, "unpaused")


@check("writes.not_paused")
def not_paused(view: View) -> Outcome:
    """No node holds writes back."""
    paused = _paused(view)
    if paused:
        return Outcome(False, f"writes paused on {', '.join(paused)}")
    return Outcome(True, "no node holds writes back")


def plan_show_drift(view: View) -> Plan:
    """List every drifted setting (read-only)."""
    drifts, unchecked = driftmod.find_drift(view.inv, view.facts)
    lines = [str(d) for d in drifts] + [f"not checked: {u}" for u in unchecked]
    return reads("config.show_drift", "cluster", "CONFIG GET / SENTINEL MASTER", lines=lines)


@action("config.show_drift", plan=plan_show_drift, changes=False)
def show_drift(ctx: Context, plan: Plan) -> Outcome:
    """Print the differences between live settings and the inventory."""
    lines = plan.params.get("lines") or ["live settings match the inventory"]
    for line in lines:
        ctx.log(line)
    return Outcome(True, f"{len(lines)} line(s)", {"drift": lines})
