"""Planned failover (a zero-loss switchover) and the checks around Sentinel failovers.

Plain `SENTINEL FAILOVER` loses the writes the old primary acknowledges after the chosen replica
stopped replicating, and leaves clients writing to a primary that refuses them (NOREPLICAS) until
Sentinel reconfigures it ~10 s later. The switch here closes both gaps: writes are paused on the
primary (bounded, so they resume on their own if this tool dies), the replicas catch up to the
last byte, Sentinel promotes one, and the moment a Sentinel majority names it the old primary is
demoted and its clients are dropped so they rediscover the new one. See
runbooks/failover-manual.md for where the remaining stall goes.

The preflight is judged once per guard round (`failover.preflight_ok`); the plans of the steer
and switch steps are made from that same view and do not judge it again.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from redis_ha import cancel, servers
from redis_ha import sentinel_events as events
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.actions.switch_sentinel import (
    AIM_INFO_AGE_MS,
    FAILOVER_INFO_PERIOD_MS,
    INFO_PERIOD_MS,
    PHASE_SLACK_MS,
    follow_info_phase,
    majority_names,
    queued_warning,
    send_failover,
    sentinel_replicas,
)
from redis_ha.cli.names import command
from redis_ha.conn import client, describe_error
from redis_ha.errors import ClusterError, GuardRefused, HAError
from redis_ha.facts import ClusterFacts
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.plan import Op, Plan, noop, reads
from redis_ha.view import View

PAUSE_MAX_MS = 5000  # the longest writes can stay paused, even if this tool dies mid-switch
PAUSE_MIN_MS = 2000  # the switch needs ~1.2 s: Sentinel sees the promotion on a 1 s INFO cycle
PAUSE_BELOW_DOWN_AFTER_MS = 500
SYNC_TIMEOUT_S = 1.0  # replicas must reach the primary's offset this fast once writes pause
STEER_PRIORITY = 1  # lowest non-zero replica-priority: Sentinel prefers it
# Sentinels re-read a replica's INFO (and its priority) every 10 s; a loaded host needs more.
STEER_WAIT_S = 25.0
STEER_SILENT_S = 5.0  # a Sentinel silent this long is hung or gone, not one missed poll
MARGIN_S = 0.5  # give up waiting for promotion this long before the pause would expire
PROMOTED = "<the promoted replica>"  # who Sentinel promotes is only known at apply time
# Test hook: seconds to sleep while writes are paused, so a test can land a fault there: right
# after pausing (the default) or, with HOLD_AT_ENV=failover, just before SENTINEL FAILOVER.
HOLD_ENV = "REDIS_HA_HOLD_AFTER_PAUSE_S"
HOLD_AT_ENV = "REDIS_HA_HOLD_AT"
HOLD_AT_PAUSE, HOLD_AT_FAILOVER = "pause", "failover"


def hold_here(ctx: Context, point: str) -> None:
    """The test hook: sleep HOLD_ENV seconds if HOLD_AT_ENV names this point (default: pause),
    saying so first, so a test lands its fault after what came before (a ping, the pause)."""
    hold = float(os.environ.get(HOLD_ENV) or 0)
    if hold and (os.environ.get(HOLD_AT_ENV) or HOLD_AT_PAUSE) == point:
        ctx.log(f"test hook: holding {hold:g} s at {point}")
        cancel.sleep(hold)


# --- preflight (pure) --------------------------------------------------------------------------


def promotable(view: View, name: str) -> str | None:
    """Why replica `name` cannot be promoted safely, or None when it can."""
    h = view.health
    n = view.node(name)
    if not n.up:
        return f"{name} is down ({n.error})"
    if name not in h.in_sync_replicas:
        src = n.replicating_from or "nothing"
        link = "up" if n.link_up else "down"
        return (
            f"{name} is not an in-sync replica of {h.primary} (replicates from {src}, link {link})"
        )
    if n.replica_priority is not None and n.replica_priority <= 0:
        return f"{name} has replica-priority 0: Sentinel will never promote it"
    return None


def preflight(view: View, to: str | None) -> list[str]:
    """Every reason to refuse a switch to `to` (None: Sentinel's choice) on this view."""
    inv, facts, health = view.inv, view.facts, view.health
    problems: list[str] = []
    if to:
        inv.node(to)  # unknown names: InventoryError listing the known ones
    down = [s.name for s in facts.sentinels if not s.up]
    if down:
        problems.append(f"Sentinel(s) not answering: {', '.join(down)}")
    if not health.quorum_ok:
        problems.append(
            f"Sentinel quorum is not reachable (quorum {inv.settings.quorum}): "
            "a failover could not be authorised"
        )
    views = {s.name: s.primary_name or "nothing" for s in facts.sentinels if s.up}
    if len(set(views.values())) > 1:
        said = ", ".join(f"{k} says {v}" for k, v in sorted(views.items()))
        problems.append(f"Sentinels disagree on the primary: {said}")
    busy = [
        f"{s.name} ({s.failover_state or 'failover_in_progress'})"
        for s in facts.sentinels
        if s.up and s.failing_over
    ]
    if busy:
        problems.append(f"a failover is already in progress: {', '.join(busy)}")
    if health.primary is None:
        problems.append("no usable primary: " + ("; ".join(health.problems[:3]) or "unknown"))
        return problems
    if len(facts.claimed_primaries()) > 1:
        problems.append("more than one node claims to be primary (split-brain): resolve that first")
    if to:
        if to == health.primary:
            problems.append(f"{to} is already the primary: choose a replica for --to")
        elif why := promotable(view, to):
            problems.append(why)
    elif not [n for n in health.in_sync_replicas if promotable(view, n) is None]:
        problems.append(
            f"no in-sync replica of {health.primary} can be promoted "
            f"(in sync: {', '.join(health.in_sync_replicas) or 'none'})"
        )
    return problems


@check("failover.preflight_ok")
def preflight_ok(view: View, to: str | None = None) -> Outcome:
    """Quorum, every Sentinel agreeing, no failover running, and a promotable in-sync target."""
    h = view.health
    problems = preflight(view, to)
    data = {"primary": h.primary, "target": to, "in_sync": h.in_sync_replicas}
    if problems:
        return Outcome(False, "; ".join(problems), data)
    who = to or f"Sentinel's choice among {', '.join(h.in_sync_replicas)}"
    return Outcome(True, f"primary {h.primary}; switch to {who}", data)


# --- steering Sentinel's choice ----------------------------------------------------------------


def default_target(view: View) -> str | None:
    """The replica to switch to when the operator names none: the promotable in-sync replica
    with the lowest replica-priority, then the first by name (what Sentinel would prefer).

    It is steered like a `--to` target, because a switch can be timed to Sentinel's INFO cycle
    only for a replica known in advance: left to choose, Sentinel prefers the replica with the
    highest offset *it last read*, and under traffic that is the one whose INFO it refreshed on
    the failover's first tick, before `REPLICAOF NO ONE`, which costs a whole INFO period."""
    ok = [n for n in view.health.in_sync_replicas if promotable(view, n) is None]
    prio = {n: view.node(n).replica_priority or view.inv.settings.replica_priority for n in ok}
    return min(ok, key=lambda n: (prio[n], n)) if ok else None


def plan_steer(view: View, to: str | None = None, wait_s: float = STEER_WAIT_S) -> Plan:
    """Give `to` (else `default_target`) the lowest replica-priority (and rivals as preferred
    the default) so Sentinel promotes it; record the priorities to put back. From the preflight
    round's view."""
    to = to or default_target(view)
    if not to:
        return noop("failover.steer", "no promotable in-sync replica to steer to")
    inv = view.inv
    inv.node(to)
    primary = view.primary().name
    if to == primary:
        raise HAError(f"{to} is already the primary: choose a replica for --to")
    ops: list[Op] = []
    changes: dict[str, int] = {}
    restore: dict[str, int] = {}
    for n in sorted(view.facts.nodes, key=lambda n: n.name):
        if n.name == primary or not n.up or n.replica_priority is None:
            continue
        if n.name == to and n.replica_priority != STEER_PRIORITY:
            changes[n.name] = STEER_PRIORITY
            why = f"now {n.replica_priority}: Sentinel prefers the lowest; restored later"
        elif n.name != to and 0 < n.replica_priority <= STEER_PRIORITY:
            changes[n.name] = inv.settings.replica_priority
            why = f"a rival as preferred as {to} (now {n.replica_priority}); restored later"
        else:
            continue
        restore[n.name] = n.replica_priority
        ops.append(Op(n.name, f"CONFIG SET replica-priority {changes[n.name]}", why))
    want = {**changes, to: STEER_PRIORITY}
    seen = ", ".join(f"{k}={v}" for k, v in sorted(want.items()))
    ops.append(
        Op(
            "sentinels",
            f"wait until every Sentinel's SENTINEL REPLICAS shows replica-priority {seen}",
            f"at most {wait_s:g} s: they re-read replica INFO every 10 s",
        )
    )
    return Plan(
        "failover.steer",
        ops,
        params={"to": to, "set": changes, "want": want, "wait_s": wait_s},
        record={"priority_restore": restore},
    )


@action("failover.steer", plan=plan_steer)
def steer(ctx: Context, plan: Plan) -> Outcome:
    """Make Sentinel pick `to`: give it the lowest replica-priority and wait until they see it.

    A steer that does not end with every Sentinel seeing it (the wait gave up, a node or a
    Sentinel failed, Ctrl-C) puts back what it set before it returns: the runner undoes only
    completed steps, and a priority 1 left behind would steer the next automatic failover."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    p = plan.params
    changes: dict[str, int] = p["set"]
    restore: dict[str, int] = plan.record["priority_restore"]
    data: dict[str, Any] = {"set": changes, "restore": restore}
    seen: float | None = None
    why = ""
    try:
        _set_priorities(ctx.inv, changes, fail_fast=True)
        seen, why = _wait_sentinels_see_priority(ctx.inv, p["want"], p["wait_s"])
    finally:
        if seen is None:  # also on an exception or Ctrl-C: never leave the steer in force
            failed = _set_priorities(ctx.inv, restore, fail_fast=False)
            data["put_back"] = {k: v for k, v in restore.items() if k not in failed}
            data["not_put_back"] = failed
            ctx.log(f"steer put back: {data['put_back'] or 'nothing'}; not: {failed or 'none'}")
    data["sentinels_see_it_after_s"] = seen
    if seen is None:
        left = data["not_put_back"]
        back = f"; could not put back {', '.join(sorted(left))}" if left else "; put back"
        return Outcome(False, f"steer to {p['to']} abandoned: {why}{back}", data)
    return Outcome(True, f"{p['to']} has replica-priority {STEER_PRIORITY}; Sentinels see it", data)


def _set_priorities(
    inv: Inventory, prios: dict[str, int], *, fail_fast: bool, persist: bool = False
) -> dict[str, str]:
    """CONFIG SET replica-priority on each node; the failures (or a ClusterError at the first).

    `persist` (the restore) also runs CONFIG REWRITE, best effort: Sentinel rewrites the config
    file of the replica it promotes, so a steered one's file says priority 1 after the switch,
    and without this a restart of that node brought the steer back (found by a fault test)."""
    failed: dict[str, str] = {}
    for name, prio in prios.items():
        c = client(inv, inv.node(name), timeout=2.0)
        try:
            c.config_set("replica-priority", prio)
            if persist:  # no config file (a container): nothing a restart would read
                with contextlib.suppress(redis.ResponseError):
                    c.execute_command("CONFIG", "REWRITE")
        except (redis.RedisError, OSError) as e:
            if fail_fast:
                raise ClusterError(
                    f"{name}: CONFIG SET replica-priority {prio} failed ({describe_error(e)})"
                ) from None
            failed[name] = describe_error(e)
        finally:
            c.close()
    return failed


def _wait_sentinels_see_priority(
    inv: Inventory, want: dict[str, int], wait_s: float
) -> tuple[float | None, str]:
    """(seconds until every Sentinel's SENTINEL REPLICAS shows the wanted priorities, "") or
    (None, why not).

    One connection per Sentinel for the whole wait. It ends early when a Sentinel has not
    answered, or has judged a steered node down, for STEER_SILENT_S: the switch's guard would
    refuse either, and the steer is put back sooner (a node just restarted is judged down until
    the Sentinel's next ping, so one reading is not enough)."""
    t0 = time.monotonic()
    # Sentinels list replicas by the address they announce (a proxy port in a partitionable lab)
    addrs = {"{}:{}".format(*inv.node(n).announced): n for n in want}
    clients = {s.name: client(inv, s, timeout=1.0) for s in inv.sentinels}
    fine = dict.fromkeys(clients, t0)  # when each last answered and judged no steered node down
    try:
        while True:
            ok = True
            for name, c in clients.items():
                why = _steer_seen(c, inv.master_name, addrs, want)
                ok = ok and why is None
                if not why:  # answered, nothing wrong (seen, or not yet)
                    fine[name] = time.monotonic()
                elif time.monotonic() - fine[name] > STEER_SILENT_S:
                    return None, f"{name}: {why} for {STEER_SILENT_S:g} s"
            if ok:
                return round(time.monotonic() - t0, 3), ""
            if time.monotonic() - t0 > wait_s:
                return None, (
                    f"Sentinels did not report replica-priority {STEER_PRIORITY} for "
                    f"{', '.join(want)} within {wait_s:.0f} s (they re-read replica INFO "
                    "every 10 s)"
                )
            cancel.sleep(0.2)
    finally:
        for c in clients.values():
            c.close()


def _steer_seen(
    c: redis.Redis, master: str, addrs: dict[str, str], want: dict[str, int]
) -> str | None:
    """None when this Sentinel shows every wanted priority; "" when it does not yet; else what
    is wrong (it does not answer, or judges a steered node down). The next call reconnects."""
    try:
        reps = sentinel_replicas(c, master)
    except (redis.RedisError, OSError) as e:
        return f"no answer ({describe_error(e)})"
    seen = True
    for a, node in addrs.items():
        d = reps.get(a, {})
        flags = str(d.get("flags", ""))
        if "s_down" in flags or "o_down" in flags:
            return f"judges {node} down ({flags})"
        seen = seen and int(d.get("slave-priority", -1)) == want[node]
    return None if seen else ""


def plan_restore_priority(view: View, priority_restore: dict[str, int] | None = None) -> Plan:
    """Put back the replica-priorities the steer step recorded (`$priority_restore`).

    From the record alone, not from the live priorities the steer step changed, so the dry run
    shows the very operations of the run (setting a value a node already has is harmless)."""
    if not priority_restore:
        return noop("failover.restore_priority", "no replica-priority was changed")
    ops = [
        op
        for name, prio in sorted(priority_restore.items())
        for op in (
            Op(name, f"CONFIG SET replica-priority {prio}", "the value before this run"),
            Op(name, "CONFIG REWRITE", "Sentinel rewrote a promoted node's file; best effort"),
        )
    ]
    return Plan("failover.restore_priority", ops, params={"restore": dict(priority_restore)})


@action("failover.restore_priority", plan=plan_restore_priority)
def restore_priority(ctx: Context, plan: Plan) -> Outcome:
    """Put back every replica-priority the steer step changed (no-op when none was)."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    restore: dict[str, int] = plan.params["restore"]
    failed = _set_priorities(ctx.inv, restore, fail_fast=False, persist=True)
    if failed:
        ctx.state["priority_restore"] = {k: v for k, v in restore.items() if k in failed}
        why = "; ".join(f"{k}: {v}" for k, v in failed.items())
        return Outcome(False, f"could not restore replica-priority on {why}")
    ctx.state["priority_restore"] = {}
    done = ", ".join(f"{k}={v}" for k, v in restore.items())
    return Outcome(True, f"replica-priority restored: {done}", {"restored": restore})


# --- the switch --------------------------------------------------------------------------------


@dataclass
class SwitchResult:
    """What the switch did and how long each part took (seconds since writes paused)."""

    old_primary: str
    new_primary: str
    via: str
    pause_ms: int
    paused_at: float = 0.0  # wall clock (Unix s) when writes paused: other processes compare
    phase_wait_s: float = 0.0  # before the pause: following the leader's INFO cycle
    info_age_ms: int | None = None  # age of its last INFO reply to the target at SENTINEL FAILOVER
    synced_s: float = 0.0
    failover_sent_s: float = 0.0
    promoted_s: float = 0.0
    unpaused_s: float = 0.0
    clients_killed: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_via(inv: Inventory, facts: ClusterFacts, via: str | None) -> Endpoint:
    """The Sentinel to send SENTINEL FAILOVER to: `via`, else the last one that answers.

    The Sentinel that leads a failover lists the new primary in SENTINEL MASTERS (what redis-py
    discovers with) only at +failover-end, after it reconfigured every other replica (~1 s more);
    the others switch within ~50 ms of the promotion. Apps list Sentinels in inventory order and
    redis-py asks the first that answers, so the leader should be the last one.
    """
    if via:
        return inv.sentinel(via)
    up = [s for s in facts.sentinels if s.up]
    if not up:
        raise ClusterError("no Sentinel answers")
    return inv.sentinel(up[-1].name)


def down_after_ms(inv: Inventory, facts: ClusterFacts) -> int:
    """The shortest down-after the answering Sentinels run with (else the inventory's)."""
    live = [_int(s.config.get("down-after-milliseconds")) for s in facts.sentinels if s.up]
    known = [d for d in live if d]
    return min(known) if known else inv.settings.down_after_ms


def pause_for(inv: Inventory, facts: ClusterFacts) -> int:
    """How long to pause writes: under the Sentinels' down-after, so a dead tool's pause never
    turns into an automatic failover.

    While writes are paused, Sentinel's periodic PUBLISH to the primary waits too, and its PINGs
    queue behind it: measured, a 5 s pause with down-after 1000 ms made the Sentinels declare the
    primary down and fail over on their own. Down-after minus 0.5 s (2.5 s with the production
    3000 ms), at most 5 s, at least 2 s (the switch itself takes ~1.2 s).
    """
    limit = down_after_ms(inv, facts) - PAUSE_BELOW_DOWN_AFTER_MS
    return max(PAUSE_MIN_MS, min(PAUSE_MAX_MS, limit))


def check_pause(pause_ms: int, down_after: int) -> None:
    """Refuse an operator's pause that could outlast the tool's switch or Sentinel's patience."""
    limit = down_after - PAUSE_BELOW_DOWN_AFTER_MS
    if not PAUSE_MIN_MS <= pause_ms <= PAUSE_MAX_MS:
        raise GuardRefused(
            f"pause_ms must be between {PAUSE_MIN_MS} and {PAUSE_MAX_MS} (got {pause_ms})"
        )
    if pause_ms > limit:
        raise GuardRefused(
            f"pause_ms {pause_ms} is above down-after {down_after} ms minus "
            f"{PAUSE_BELOW_DOWN_AFTER_MS} ms: a pause that long lets Sentinel fail over by itself"
        )


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def switch_path(view: View) -> str:
    """Which switchover this cluster gets, and why: the server's own coordinated failover
    (`SENTINEL FAILOVER ... COORDINATED`, Valkey 9+) is detected, but the paused switch stays the
    path: measured on Valkey 9.1 (README), the coordinated one left a naive client on the old
    primary for 2.06 s with ~1000 READONLY errors, where the paused switch drops its clients."""
    cap = servers.coordinated_failover(view.facts)
    if cap.available:
        return (
            "path: pause + catch-up + SENTINEL FAILOVER + demote (coordinated failover offered "
            "by every Sentinel, not used: it leaves clients on the old primary)"
        )
    return (
        "path: pause + catch-up + SENTINEL FAILOVER + demote (no coordinated failover: "
        f"{cap.reasons[0] if cap.reasons else 'no Sentinel answers'})"
    )


def plan_switch(
    view: View, to: str | None = None, via: str | None = None, pause_ms: int | None = None
) -> Plan:
    """Every operation of the switch and every value its loop uses, from the guard round's view
    (the preflight guard judged it; this does not judge it again)."""
    inv = view.inv
    old = view.primary().name
    if to:
        inv.node(to)
    chosen = "steered"
    if not to:
        to, chosen = default_target(view), "chosen by the tool and steered"
    down_after = down_after_ms(inv, view.facts)
    if pause_ms is None:
        pause_ms = pause_for(inv, view.facts)
    else:
        check_pause(pause_ms, down_after)
    replicas = sorted(view.health.in_sync_replicas)
    leader = choose_via(inv, view.facts, via).name
    who = f"{to} ({chosen})" if to else f"Sentinel's choice among {', '.join(replicas)}"
    m = inv.master_name
    path = switch_path(view)
    phase_of = [to] if to else replicas
    wait_max_s = (INFO_PERIOD_MS + PHASE_SLACK_MS) / 1000
    ops = [
        Op(leader, f"follow SENTINEL REPLICAS {m} info-refresh for {', '.join(phase_of)} until "
           f"its last INFO reply is {AIM_INFO_AGE_MS} ms old",
           f"writes flow meanwhile; at most {wait_max_s:g} s, then at once; the promotion then "
           f"shows ~{FAILOVER_INFO_PERIOD_MS - AIM_INFO_AGE_MS} ms after SENTINEL FAILOVER, "
           "not ~1 s"),
        Op(old, f"CLIENT PAUSE {pause_ms} WRITE", f"ends by itself; down-after {down_after} ms"),
        *(
            Op(r, f"wait until slave_repl_offset reaches {old}'s master_repl_offset", "at most 1 s")
            for r in replicas
        ),
        Op(leader, f"SENTINEL FAILOVER {m}", f"promotes {who}; {path}"),
        Op("sentinels", "poll GET-MASTER-ADDR-BY-NAME until a majority names a new primary",
           f"pause renewed up to failover-timeout {inv.settings.failover_timeout_ms} ms"),
        Op(old, f"REPLICAOF {PROMOTED}", "it can no longer acknowledge writes"),
        *(
            Op(r, f"REPLICAOF {PROMOTED} (unless it is the promoted one)", "")
            for r in replicas
        ),
        Op(old, "CLIENT KILL TYPE normal SKIPME yes; CLIENT KILL TYPE pubsub SKIPME yes",
           "clients ask the Sentinels again"),
        Op(old, "CLIENT UNPAUSE", "waiting writes fail over to the new primary"),
    ]  # fmt: skip
    params = {
        "old": old,
        "to": to,
        "via": leader,
        "replicas": replicas,
        "pause_ms": pause_ms,
        "failover_timeout_ms": inv.settings.failover_timeout_ms,
        "phase_of": ["{}:{}".format(*inv.node(n).announced) for n in phase_of],
        "aim_ms": AIM_INFO_AGE_MS,
        "phase_wait_max_s": wait_max_s,
        "path": path,
    }
    return Plan("failover.switch", ops, params=params, record={"old_primary": old})


def _offset(c: redis.Redis, key: str) -> int:
    info = c.info("replication")
    return int(info.get(key, -1))


def switchover(ctx: Context, plan: Plan) -> SwitchResult:
    """Pause, catch up, SENTINEL FAILOVER, demote + drop clients at promotion, unpause.

    Every value comes from `plan.params`; nothing is judged again here but that each endpoint
    it touches answers (a ping before the pause)."""
    inv = ctx.inv
    p = plan.params
    pause_ms: int = p["pause_ms"]
    to: str | None = p["to"]
    old = inv.node(p["old"])
    leader = inv.sentinel(p["via"])
    res = SwitchResult(old_primary=old.name, new_primary="", via=leader.name, pause_ms=pause_ms)
    pc = client(inv, old, timeout=1.0)
    rcs = {r: client(inv, inv.node(r), timeout=0.5) for r in p["replicas"]}
    scs = {s.name: client(inv, s, timeout=0.3) for s in inv.sentinels}
    paused = False
    t0 = time.monotonic()
    try:
        # Connect to everything before pausing: no handshake inside the stall.
        for name, c in ((old.name, pc), *rcs.items(), (leader.name, scs[leader.name])):
            try:
                c.ping()
            except (redis.RedisError, OSError) as e:
                raise ClusterError(
                    f"{name} does not answer ({describe_error(e)}); nothing was switched"
                ) from None
        # Time the pause to the leader's INFO cycle (writes flow while it waits).
        phase = follow_info_phase(
            scs[leader.name], inv.master_name, p["phase_of"], p["aim_ms"], p["phase_wait_max_s"]
        )
        res.phase_wait_s = phase.waited_s
        if not phase.on_time:
            res.notes.append(
                f"{leader.name}'s INFO cycle was not followed (waited {phase.waited_s:.1f} s): "
                "the switch went at once, as untimed"
            )
        t_phase = time.monotonic()
        pc.execute_command("CLIENT", "PAUSE", pause_ms, "WRITE")
        paused = True
        t0 = time.monotonic()
        res.paused_at = time.time()
        ctx.state["writes_paused_on"] = old.name
        ctx.state["pause_expires_at"] = time.time() + pause_ms / 1000
        ctx.log(f"writes paused on {old.name} for at most {pause_ms} ms")
        hold_here(ctx, HOLD_AT_PAUSE)
        # 1. every in-sync replica holds every acknowledged write
        target_off = _offset(pc, "master_repl_offset")
        deadline = t0 + SYNC_TIMEOUT_S
        while True:
            res.offsets = {n: _offset(c, "slave_repl_offset") for n, c in rcs.items()}
            behind = {n: target_off - o for n, o in res.offsets.items() if o < target_off}
            if not behind:
                break
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"replicas did not catch up with {old.name} within {SYNC_TIMEOUT_S} s "
                    f"(bytes behind: {behind}); nothing was switched"
                )
            time.sleep(0.002)
        res.synced_s = round(time.monotonic() - t0, 3)
        # 2. Sentinel promotes a replica: sent to one that answers a ping just before it
        order = [leader.name, *(s for s in reversed(list(scs)) if s != leader.name)]
        sent = send_failover(scs, order, inv.master_name, lambda: hold_here(ctx, HOLD_AT_FAILOVER))
        if sent.queued:
            res.notes.append(queued_warning(sent))
        if sent.via is None and not sent.queued:
            raise ClusterError(
                f"no Sentinel answered a ping before SENTINEL FAILOVER "
                f"({', '.join(sent.silent)}); nothing was switched"
            )
        if sent.via is not None and sent.via != leader.name:
            res.via = sent.via
            res.notes.append(f"{leader.name} did not answer: SENTINEL FAILOVER went to {sent.via}")
        res.failover_sent_s = round(time.monotonic() - t0, 3)
        if phase.age_ms is not None:
            res.info_age_ms = round(phase.age_ms + (time.monotonic() - t_phase) * 1000)
        # Sentinel accepted (or may yet carry out a queued one): the old primary will be demoted
        # whatever happens, so unpausing before the promotion would only let it acknowledge
        # writes that are then lost. If Sentinel is slow, the pause is renewed (each renewal
        # bounded) up to failover-timeout. Hung Sentinels are not polled (each would time out).
        live = {k: c for k, c in scs.items() if k not in sent.hung()}
        t_sent = time.monotonic()
        give_up = t_sent + p["failover_timeout_ms"] / 1000
        renew_at = t0 + pause_ms / 1000 - MARGIN_S
        if sent.via is None:  # only queued in a hung Sentinel: no renewal, one pause at most
            give_up = renew_at
        new_name = None
        while new_name is None:
            new_name = majority_names(inv, live, exclude=old.name)
            if new_name is not None:
                break
            now = time.monotonic()
            if now > give_up:
                raise ClusterError(
                    f"no Sentinel majority named a new primary {now - t_sent:.1f} s after "
                    f"SENTINEL FAILOVER; writes were unpaused on {old.name}. "
                    + (
                        queued_warning(sent)
                        if sent.via is None
                        else f"Run `{command('failover.verify')}` before retrying"
                    )
                )
            if now > renew_at:
                pc.execute_command("CLIENT", "PAUSE", pause_ms, "WRITE")
                renew_at = now + pause_ms / 1000 - MARGIN_S
                note = "Sentinel was slow to promote: the pause was renewed"
                res.notes += [] if note in res.notes else [note]
            time.sleep(0.01)
        res.promoted_s = round(time.monotonic() - t0, 3)
        res.new_primary = new_name
        if to and new_name != to:
            res.notes.append(f"Sentinel promoted {new_name}, not {to}")
        new = inv.node(new_name)
        # 3. demote the old primary at once, point the other replicas at the new one, and drop
        # the old primary's clients so they ask the Sentinels again.
        pc.execute_command("REPLICAOF", new.host, new.port)
        for name, c in rcs.items():
            if name == new_name:
                continue
            try:
                c.execute_command("REPLICAOF", new.host, new.port)
            except (redis.RedisError, OSError) as e:
                res.notes.append(f"{name}: REPLICAOF {new.name} failed ({describe_error(e)})")
        killed = pc.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        killed += pc.execute_command("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")
        res.clients_killed = int(killed)
        ctx.state["old_primary"] = old.name
        ctx.state["new_primary"] = new_name
    finally:
        if paused:
            try:
                pc.execute_command("CLIENT", "UNPAUSE")
                res.unpaused_s = round(time.monotonic() - t0, 3)
                ctx.state.pop("writes_paused_on", None)
            except (redis.RedisError, OSError) as e:
                ctx.log(
                    f"could not unpause {old.name} ({describe_error(e)}): the pause expires by "
                    f"itself {pause_ms} ms after it began"
                )
        for c in (pc, *rcs.values(), *scs.values()):
            c.close()
    return res


@action("failover.switch", plan=plan_switch)
def switch(ctx: Context, plan: Plan) -> Outcome:
    """The zero-loss switch: writes paused only between the pause and the demotion."""
    r = switchover(ctx, plan)
    ctx.state["switch"] = r.to_dict()
    msg = (
        f"{r.new_primary} is the primary (was {r.old_primary}); writes paused "
        f"{r.unpaused_s:.2f} s after {r.phase_wait_s:.1f} s following Sentinel's INFO cycle "
        f"(caught up {r.synced_s:.3f} s, promoted {r.promoted_s:.2f} s, "
        f"{r.clients_killed} client(s) dropped)"
    )
    if r.notes:
        msg += "; " + "; ".join(r.notes)
    return Outcome(True, msg, r.to_dict())


# --- after the switch --------------------------------------------------------------------------


@check("failover.old_primary_replicates")
def old_primary_replicates(view: View, old: str) -> Outcome:
    """The old primary (`$old_primary`) is a replica of the current primary with its link up."""
    n = view.node(old)
    primary = view.health.primary
    if not n.up:
        return Outcome(False, f"{old} is down: {n.error}")
    if n.role != "replica" or n.replicating_from != primary:
        return Outcome(
            False, f"{old} is a {n.role} replicating from {n.replicating_from}, not {primary}"
        )
    if not n.link_up or n.sync_in_progress:
        return Outcome(False, f"{old}: replication from {primary} not up yet")
    return Outcome(True, f"{old} replicates from the new primary {primary}")


# --- after an automatic failover ---------------------------------------------------------------


def _last_failover(inv: Inventory) -> tuple[events.Failover | None, list[str]]:
    """The last failover in the Sentinel logs (a read the facts do not hold), and missing logs."""
    evs, missing = events.read_events(inv)
    s = inv.settings
    fo = events.last_failover(
        evs,
        inv.master_name,
        down_after_ms=s.down_after_ms,
        failover_timeout_ms=s.failover_timeout_ms,
    )
    return fo, missing


def plan_old_primary_status(view: View, old: str | None = None) -> Plan:
    """Which node was the old primary (`--old`, else the Sentinel logs), and its one read."""
    inv = view.inv
    how = "named by --old"
    if not old:  # the logs are read only when --old does not name it
        fo, _ = _last_failover(inv)
        old = inv.name_of(fo.old_primary) if fo and fo.old_primary else None
        how = "the old primary of the last +switch-master in the Sentinel logs"
    if not old:
        return noop(
            "failover.old_primary_status",
            "the Sentinel logs show no failover; pass --old NODE to name the old primary",
        )
    inv.node(old)
    return Plan(
        "failover.old_primary_status",
        [Op(old, "INFO replication", f"read-only; {how}")],
        params={"old": old},
        record={"old_primary": old},
        changes=False,
    )


def old_primary_verdict(view: View, old: str) -> Outcome:
    """Where the old primary is now (a replica again, down, or a rival primary); what to do."""
    h = view.health
    n = view.node(old)
    data = {"old_primary": old, "up": n.up, "role": n.role, "replicating_from": n.replicating_from}
    if not n.up:
        return Outcome(
            True,
            f"{old} (the old primary) is still down. The cluster runs on "
            f"{len(h.in_sync_replicas) + 1} node(s). Bring it back (restart the process or the "
            f"service); Sentinel turns it into a replica of {h.primary} within ~10 s. Until then "
            f"one more failure leaves {h.primary} refusing writes (min-replicas-to-write).",
            data,
        )
    if n.role == "master":
        return Outcome(
            False,
            f"{old} is up and says it is a PRIMARY while the Sentinels name {h.primary}: "
            "split-brain. Do not demote it by hand yet: follow runbooks/split-brain.md",
            data,
        )
    if n.replicating_from == h.primary and n.link_up and not n.sync_in_progress:
        return Outcome(True, f"{old} is back as an in-sync replica of {h.primary}", data)
    return Outcome(
        False,
        f"{old} is a replica of {n.replicating_from} (link {'up' if n.link_up else 'down'}"
        f"{', syncing' if n.sync_in_progress else ''}); expected an in-sync replica of "
        f"{h.primary}. Wait 10 s and re-run; if it persists, see runbooks/replica-rebuild.md",
        data,
    )


@action("failover.old_primary_status", plan=plan_old_primary_status, changes=False)
def old_primary_status(ctx: Context, plan: Plan) -> Outcome:
    """Where the old primary is now (a replica again, down, or a rival primary); what to do."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    return old_primary_verdict(ctx.view(), plan.params["old"])


def plan_timeline(view: View) -> Plan:
    """Read every Sentinel's log: the events of the last failover and its durations."""
    return reads("failover.timeline", "sentinels", "read the Sentinel logs (last failover)")


@action("failover.timeline", plan=plan_timeline, changes=False)
def timeline(ctx: Context, plan: Plan) -> Outcome:
    """The Sentinel events of the last failover and its measured durations."""
    inv = ctx.inv
    fo, missing = _last_failover(inv)
    if fo is None:
        where = (
            f"(no readable log for: {', '.join(missing)})"
            if missing
            else "(no +switch-master in the logs)"
        )
        return Outcome(
            True,
            f"no failover found in the Sentinel logs {where}. Live view: {_live_epochs(ctx)}. "
            "To catch the next one: redis-cli -p <sentinel-port> PSUBSCRIBE '*'",
            {"missing_logs": missing},
        )
    name = inv.name_of
    lines = [
        f"{fo.kind} failover: {name(fo.old_primary)} -> {name(fo.new_primary)}, "
        f"led by {fo.leader or '?'}"
    ]
    for e in fo.events:
        lines.append(f"  {events.fmt_ts(e.ts)}  {e.sentinel:<12} {e.name} {_short(inv, e.text)}")
    d = fo.durations()
    figures = ", ".join(f"{k[:-2].replace('_', ' ')} {v:.2f} s" for k, v in d.items() if v)
    lines.append(f"durations: {figures}")
    if fo.crash_estimate:
        lines.append(
            f"the primary most likely stopped at {events.fmt_ts(fo.crash_estimate)} "
            f"(first +sdown minus down-after {inv.settings.down_after_ms} ms)"
        )
    if missing:
        lines.append(f"(no log for {', '.join(missing)}: their events are missing)")
    ctx.log("\n".join(lines))
    ctx.state["failover"] = {"old": name(fo.old_primary), "new": name(fo.new_primary), **d}
    return Outcome(True, lines[0] + "; " + figures, fo.to_dict())


def _short(inv: Inventory, text: str) -> str:
    """Replace host port pairs with node names so the timeline reads at 3 a.m."""
    for n in (*inv.nodes, *inv.sentinels):
        text = text.replace(f"{n.host}:{n.port} {n.host} {n.port}", n.name)
        text = text.replace(f"{n.host} {n.port}", n.name)
    return text[:90]


def _live_epochs(ctx: Context) -> str:
    f = ctx.view().facts
    return ", ".join(
        f"{s.name}: {s.primary_name or '?'} epoch {s.config_epoch}" if s.up else f"{s.name}: down"
        for s in f.sentinels
    )


@check("failover.reachable_replicas_in_sync")
def reachable_replicas_in_sync(view: View) -> Outcome:
    """Every replica that answers is in sync with the primary, and enough of them for writes.

    Unlike cluster.all_replicas_in_sync, a node that is down is tolerated (after a crash the old
    primary may still be down): only the ones that answer must be in sync."""
    f, h = view.facts, view.health
    if h.primary is None:
        return Outcome(False, "no usable primary: " + "; ".join(h.problems[:3]))
    up = [n.name for n in f.nodes if n.up and n.name != h.primary]
    behind = [n for n in up if n not in h.in_sync_replicas]
    down = [n.name for n in f.nodes if not n.up]
    data = {"primary": h.primary, "in_sync": h.in_sync_replicas, "behind": behind, "down": down}
    need = view.inv.settings.min_replicas_to_write
    if behind:
        return Outcome(False, f"not in sync with {h.primary}: {', '.join(behind)}", data)
    if len(h.in_sync_replicas) < need:
        return Outcome(
            False, f"{h.primary} has {len(h.in_sync_replicas)} in-sync replica(s), {need} needed"
        )
    extra = f" ({', '.join(down)} down)" if down else ""
    return Outcome(
        True, f"{len(h.in_sync_replicas)} replica(s) in sync with {h.primary}{extra}", data
    )
