"""Split-brain recovery steps: assess, fence the stale primaries, salvage, demote, repair Sentinels.

Order matters and each step refuses to run out of order: a stale primary is fenced (writes
paused, with a bound) before its keys are read, exported before anything is written, and demoted
only after its salvage is done, because demotion wipes it. Sentinels are repaired one at a time,
only while the others still make a quorum, and never while a partition is still active (a
Sentinel reset then could forget the cut-off node or vote with a half view).

`splitbrain.assess` fixes the authoritative primary and the stale ones (`$authoritative`,
`$stale`) from one view; every later step plans from that record, not from live roles, so a dry
run shows the operations the run performs.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import redis

from redis_ha import cancel
from redis_ha import salvage as salvagemod
from redis_ha import splitbrain as sb
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.cli.names import command
from redis_ha.conn import call
from redis_ha.drift import expected_sentinel_config, sentinel_drifts
from redis_ha.errors import ClusterError, GuardRefused
from redis_ha.facts import ClusterFacts
from redis_ha.health import in_sync, majority
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.journal import journal_dir
from redis_ha.plan import Op, Plan, noop
from redis_ha.view import View

FENCE_MS = 120_000
SENTINEL_SETTLE_S = 20.0
SALVAGE_EXAMPLES = 3  # keys named in the salvage plan's reasons


def _cmd(inv: Inventory, ep: Endpoint, *args: Any) -> Any:
    return call(inv, ep, *args, timeout=3.0)


def _failing_over(f: ClusterFacts) -> list[str]:
    return [s.name for s in f.sentinels if s.up and s.failing_over]


def _others(authoritative: str, stale: list[str] | None) -> list[str]:
    """The recorded stale primaries, never the authoritative one, in a stable order."""
    return sorted(n for n in (stale or []) if n != authoritative)


# --- assess ---------------------------------------------------------------------------------
def _assessment(view: View, primary: str) -> tuple[sb.Report, str]:
    """The split-brain report of the view and its authoritative primary, checked against
    `--primary` (the app follows the Sentinel majority, so that is the node to keep)."""
    rep = sb.detect(view.inv, view.facts)
    name = rep.authoritative
    if not name or name == rep.authoritative_address:
        raise GuardRefused(
            "no majority of Sentinels names a primary of this inventory: fix the Sentinels first "
            f"({command('status')}; the majority decides which primary is authoritative)"
        )
    if primary and primary != name:
        raise GuardRefused(
            f"--primary {primary} but the Sentinel majority names {name}; the app follows the "
            f"Sentinels, so {name} is authoritative (make the Sentinels agree first)"
        )
    return rep, name


def _summary(rep: sb.Report, auth: str) -> str:
    stale = ", ".join(rep.stale_primaries) or "none"
    repair = ", ".join(_sentinels_to_repair(rep)) or "none"
    return f"authoritative primary {auth}; stale primaries: {stale}; Sentinels to repair: {repair}"


def plan_assess(view: View, primary: str = "", wait_failover_s: float = 20.0) -> Plan:
    """Fix the authoritative primary and the stale ones from this view (read-only)."""
    busy = _failing_over(view.facts)
    params: dict[str, Any] = {"primary": primary, "wait_failover_s": float(wait_failover_s)}
    if busy:
        # Mid-failover the just-promoted node looks like a second primary: the plan is fixed
        # only once the failover has ended, from the view of that moment.
        op = Op(
            "sentinels",
            f"wait up to {wait_failover_s:g} s for the failover in progress to end, "
            "then fix the authoritative primary from the Sentinels' view",
            f"failing over: {', '.join(busy)}",
        )
        return Plan("splitbrain.assess", [op], params=params, changes=False, deferred=True)
    rep, auth = _assessment(view, primary)
    # What was seen goes in the reasons (notes such as "a partition is likely" come and go with
    # the Sentinels' timers); the decision, which later steps plan from, is the operation.
    seen = "; ".join(f"{f.kind}: {f.text}" for f in rep.findings) or "no finding"
    ops = [
        Op("cluster", "read ROLE of every node and the view of every Sentinel", seen),
        Op("cluster", _summary(rep, auth), f"{rep.votes} of {rep.sentinels_total} Sentinels"),
    ]
    params["report"] = rep.to_dict()
    record = {"authoritative": auth, "stale": sorted(rep.stale_primaries)}
    return Plan("splitbrain.assess", ops, params=params, record=record, changes=False)


@action("splitbrain.assess", plan=plan_assess, changes=False)
def assess(ctx: Context, plan: Plan) -> Outcome:
    """Find every self-declared primary and every Sentinel's view; fix the plan (read-only)."""
    p = plan.params
    if plan.record:  # fixed by the plan: nothing left to read
        return Outcome(True, plan.ops[1].command, p["report"])
    deadline = time.monotonic() + p["wait_failover_s"]
    view = ctx.view()
    while busy := _failing_over(view.facts):
        if time.monotonic() > deadline:
            raise GuardRefused(
                f"a failover is still running ({', '.join(busy)}) after "
                f"{p['wait_failover_s']:.0f} s: re-run when it has ended"
            )
        ctx.log(f"waiting for the failover in progress to end ({', '.join(busy)})")
        cancel.sleep(0.5)
        view = ctx.view()
    rep, auth = _assessment(view, p["primary"])
    ctx.state["authoritative"] = auth  # what the plan said it would fix after the failover
    ctx.state["stale"] = sorted(rep.stale_primaries)
    for f in rep.findings:
        ctx.log(f"{f.kind}: {f.text}")
    return Outcome(True, _summary(rep, auth), rep.to_dict())


@check("splitbrain.authoritative_confirmed")
def authoritative_confirmed(view: View, authoritative: str) -> Outcome:
    """The Sentinel majority still names the primary the assessment fixed (`$authoritative`)."""
    now = view.inv.name_of(view.health.authoritative)
    if now is None:
        return Outcome(False, "no Sentinel majority names a primary any more")
    if now != authoritative:
        return Outcome(False, f"the Sentinels now name {now}, not {authoritative}: start over")
    return Outcome(True, f"the Sentinel majority names {now}")


# --- fence ----------------------------------------------------------------------------------
def plan_fence(view: View, authoritative: str, stale: list[str], pause_ms: int = FENCE_MS) -> Plan:
    """CLIENT PAUSE WRITE on each recorded stale primary, bounded by `pause_ms`."""
    names = _others(authoritative, stale)
    if not names:
        return noop("splitbrain.fence", "no stale primary: nothing to fence", fenced=[])
    ops = [
        Op(n, f"CLIENT PAUSE {int(pause_ms)} WRITE", "acknowledges no more writes; reads go on")
        for n in names
    ]
    params = {"nodes": names, "pause_ms": int(pause_ms)}
    record = {"fenced": names, "fence_ms": int(pause_ms)}
    return Plan("splitbrain.fence", ops, params=params, record=record)


@action("splitbrain.fence", plan=plan_fence)
def fence(ctx: Context, plan: Plan) -> Outcome:
    """Stop each stale primary acknowledging writes now, bounded by a pause timeout."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    ms = plan.params["pause_ms"]
    for name in plan.params["nodes"]:
        _cmd(ctx.inv, ctx.inv.node(name), "CLIENT", "PAUSE", ms, "WRITE")
        ctx.log(f"{name}: writes paused for at most {ms // 1000} s")
    done = plan.params["nodes"]
    return Outcome(True, f"fenced {', '.join(done)}", {"fenced": done})


def plan_unfence(view: View, fenced: list[str] | None = None, fence_ms: int = FENCE_MS) -> Plan:
    """CLIENT UNPAUSE on each node the fence paused (`$fenced`) that no longer claims primary.

    A fenced node that still says primary stays fenced until its pause ends by itself: unpaused,
    it acknowledges writes again that nobody salvages, and Sentinel's REPLICAOF, held by the
    pause, goes through at once and wipes what it had (measured: a lost connection mid-merge
    failed the salvage, and this undo unpaused the stale primary while 20,000 writes were half
    merged). The next run (or `--resume`) fences it again and salvages it."""
    names = sorted(fenced or [])
    if not names:
        return noop("splitbrain.unfence", "no node is fenced: nothing to unpause", fenced=[])
    primaries = {n.name for n in view.facts.claimed_primaries()}
    keep = [n for n in names if n in primaries]
    ops = [
        Op(n, "CLIENT UNPAUSE", "undo the fence: it no longer claims primary")
        for n in names
        if n not in keep
    ]
    why = (
        f"kept fenced: {', '.join(keep)} (still a primary: unpaused it would take writes, and "
        f"Sentinel's held REPLICAOF would wipe its unsalvaged ones); the pause ends by itself "
        f"within {int(fence_ms) // 1000} s, run {command('splitbrain.recover')} again to salvage "
        "it, or CLIENT UNPAUSE by hand to give its writes up (the export file has any salvaged)"
        if keep
        else ""
    )
    if not ops:
        return noop("splitbrain.unfence", why, fenced=keep)
    params = {"nodes": [op.target for op in ops], "kept": why}
    return Plan("splitbrain.unfence", ops, params=params, record={"fenced": keep})


@action("splitbrain.unfence", plan=plan_unfence)
def unfence(ctx: Context, plan: Plan) -> Outcome:
    """Undo the fence: let the stale primaries take writes again (only as an undo)."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    out = []
    for name in plan.params.get("nodes", []):
        try:
            _cmd(ctx.inv, ctx.inv.node(name), "CLIENT", "UNPAUSE")
            out.append(name)
        except ClusterError as e:
            ctx.log(f"{name}: {e} (its pause ends by itself)")
    kept = f"; {plan.params['kept']}" if plan.params.get("kept") else ""
    return Outcome(True, f"unpaused {', '.join(out) or 'nothing'}{kept}")


# --- salvage --------------------------------------------------------------------------------
def _policy(policy: str) -> str:
    if policy not in sb.POLICIES:
        raise GuardRefused(f"unknown --policy {policy!r} (choose from {', '.join(sb.POLICIES)})")
    return policy


def _salvage_why(pl: salvagemod.Plan) -> str:
    shown = [
        f"{it.decision.action} {it.key.decode(errors='backslashreplace')}"
        for it in pl.writes()[:SALVAGE_EXAMPLES]
    ]
    return pl.summary() + (f"; e.g. {', '.join(shown)}" if shown else "")


def plan_salvage(
    view: View,
    authoritative: str,
    stale: list[str],
    fenced: list[str] | None = None,
    fence_ms: int = FENCE_MS,
    policy: str = sb.DEFAULT_POLICY,
    export_dir: str = "",
) -> Plan:
    """Export every key of each stale primary, then merge it into the authoritative one.

    Reads every key of both sides (SCAN + DUMP, not in the facts) to show what the merge would
    write; the counts go in the reasons, since the keys are read again after the fence is
    re-armed, at apply time, so no acknowledged write escapes the salvage.
    """
    policy = _policy(policy)
    names = _others(authoritative, stale)
    if not names:
        return noop("splitbrain.salvage", "no stale primary: nothing to salvage", salvaged=[])
    out_dir = str(Path(export_dir) if export_dir else journal_dir())
    auth = view.inv.node(authoritative)
    refence = {n: int(fence_ms) for n in names if n in (fenced or [])}
    ops: list[Op] = []
    for n in names:
        if n in refence:
            ops.append(
                Op(n, f"CLIENT PAUSE {refence[n]} WRITE", "re-arm the fence: bound from now")
            )
        pl = salvagemod.plan(view.inv, view.inv.node(n), auth, policy)
        ops.append(
            Op(
                n,
                f"export every key to {out_dir}/salvage-{n}-<UTC time>.jsonl (mode 0600)",
                "before anything is written",
            )
        )
        ops.append(
            Op(
                authoritative,
                f"merge the keys of {n} under {policy}: RESTORE keys it lacks (no REPLACE), "
                "WATCHed RESTORE REPLACE where the policy says the stale value wins",
                _salvage_why(pl),
            )
        )
    params = {
        "authoritative": authoritative,
        "nodes": names,
        "policy": policy,
        "export_dir": out_dir,
        "refence": refence,
    }
    return Plan("splitbrain.salvage", ops, params=params, record={"salvaged": names})


@action("splitbrain.salvage", plan=plan_salvage)
def salvage(ctx: Context, plan: Plan) -> Outcome:
    """Export every key of each stale primary to a file, then merge under the chosen policy."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    p = plan.params
    auth = ctx.inv.node(p["authoritative"])
    data: dict[str, Any] = {"policy": p["policy"], "nodes": {}}
    msgs: list[str] = []
    done: list[str] = []
    try:
        for name in p["nodes"]:
            ep = ctx.inv.node(name)
            if name in p["refence"]:  # the bound counts from now, not from the fence step
                _cmd(ctx.inv, ep, "CLIENT", "PAUSE", p["refence"][name], "WRITE")
            pl = salvagemod.plan(ctx.inv, ep, auth, p["policy"])
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            path = Path(p["export_dir"]) / f"salvage-{name}-{stamp}.jsonl"
            try:
                salvagemod.export(pl, path)
            except OSError as e:  # a full disk, a folder gone: nothing was written to a node
                raise ClusterError(
                    f"salvage of {name}: cannot write the export file {path}: "
                    f"{e.strerror or e}; nothing was merged"
                ) from None
            ctx.state.setdefault("exports", {})[name] = str(path)
            ctx.log(f"exported {len(pl.items)} keys of {name} to {path}")
            ctx.log(pl.summary())
            results = salvagemod.apply(ctx.inv, pl, auth)
            data["nodes"][name] = {"export": str(path), "plan": pl.counts(), "results": results}
            if results.get("failed"):
                raise ClusterError(
                    f"salvage of {name}: {results['failed']} key(s) could not be written to "
                    f"{auth.name}; the export {path} has them"
                )
            done.append(name)
            wrote = ", ".join(f"{v} {k}" for k, v in sorted(results.items())) or "nothing to write"
            msgs.append(f"{name} -> {auth.name}: {wrote}")
    finally:
        ctx.state["salvaged"] = done  # only what was merged: demote refuses the rest
    return Outcome(True, "; ".join(msgs), data)


# --- demote ---------------------------------------------------------------------------------
def plan_demote(
    view: View,
    authoritative: str,
    stale: list[str],
    salvaged: list[str] | None = None,
    fenced: list[str] | None = None,
) -> Plan:
    """REPLICAOF the authoritative primary on each salvaged stale primary; drop its clients.

    Planned from the record, not the live role: REPLICAOF of the primary a node already follows
    changes nothing, so the plan holds whatever Sentinel did meanwhile.
    """
    names = _others(authoritative, stale)
    if not names:
        return noop("splitbrain.demote", "no stale primary left to demote")
    unsalvaged = [n for n in names if n not in (salvaged or [])]
    if unsalvaged:
        raise GuardRefused(
            f"refusing to demote {', '.join(unsalvaged)}: its keys were not salvaged yet "
            "(demotion wipes it)"
        )
    host, port = view.inv.node(authoritative).announced
    ops: list[Op] = []
    for n in names:
        ops += [
            Op(n, f"REPLICAOF {host} {port}", f"make {n} replicate from {authoritative}: wipes it"),
            Op(n, "CLIENT UNPAUSE", "end the fence"),
            Op(n, "CLIENT KILL TYPE normal SKIPME yes", "its clients rediscover the primary"),
        ]
    params = {
        "authoritative": authoritative,
        "address": [host, port],
        "nodes": names,
        "fenced": sorted(fenced or []),
    }
    return Plan("splitbrain.demote", ops, params=params)


@action("splitbrain.demote", plan=plan_demote)
def demote(ctx: Context, plan: Plan) -> Outcome:
    """Make each salvaged stale primary replicate from the authoritative one; drop its clients."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    p = plan.params
    host, port = p["address"]
    fenced = list(p["fenced"])
    still: list[str] = []
    for name in p["nodes"]:
        ep = ctx.inv.node(name)
        _cmd(ctx.inv, ep, "REPLICAOF", host, str(port))
        try:
            _cmd(ctx.inv, ep, "CLIENT", "UNPAUSE")
        except ClusterError as e:
            # Not unpaused (a cut connection, or the node died: its pause died with it): it stays
            # in `fenced`, so an undo unpauses it, and the message says so.
            ctx.log(f"{name}: {e}")
            still.append(f"{name} ({e})")
            continue
        if name in fenced:
            fenced.remove(name)
            ctx.state["fenced"] = list(fenced)  # no longer paused: nothing for the undo
        try:
            # Clients still connected to it would read its old data: make them rediscover.
            _cmd(ctx.inv, ep, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        except ClusterError as e:
            ctx.log(f"{name}: {e}")
    done = p["nodes"]
    msg = f"{', '.join(done)}: now replicating from {p['authoritative']}"
    if still:
        msg += (
            f"; not unpaused: {'; '.join(still)}: a replica now, it refuses writes anyway, and "
            f"the fence's pause ends by itself (or run {command('writes.unpause')})"
        )
    return Outcome(True, msg, {"demoted": done})


@check("splitbrain.only_authoritative_claims_primary")
def only_authoritative_claims_primary(view: View, authoritative: str) -> Outcome:
    """Exactly one reachable node says it is primary, and it is the authoritative one."""
    claimed = [n.name for n in view.facts.claimed_primaries()]
    if claimed == [authoritative]:
        return Outcome(True, f"one primary: {authoritative}")
    said = ", ".join(claimed) or "none"
    return Outcome(False, f"nodes saying they are primary: {said} (want only {authoritative})")


# --- Sentinels ------------------------------------------------------------------------------
def _sentinels_to_repair(rep: sb.Report) -> list[str]:
    return sorted({*rep.disagreeing_sentinels, *rep.stale_peer_sentinels})


def _quorum_without(f: ClusterFacts, name: str, auth_addr: str) -> int:
    """Sentinels other than `name` that are up and name the authoritative primary."""
    return sum(1 for s in f.sentinels if s.name != name and s.up and s.primary == auth_addr)


def _settings_off(view: View) -> dict[str, list[str]]:
    """Sentinel -> what it watches the primary with that the inventory does not say (measured:
    a resume after a cut between MONITOR and SET found nothing to repair); set again."""
    drifts = sentinel_drifts(view.inv, view.facts)
    return {name: [str(d) for d in ds] for name, ds in drifts.items()}


def plan_repair(view: View, authoritative: str, settle_s: float = SENTINEL_SETTLE_S) -> Plan:
    """Each Sentinel that disagrees (REMOVE + MONITOR), lists stale peers (RESET) or watches
    with other settings than the inventory's (SET), in turn."""
    rep = sb.detect(view.inv, view.facts)
    off = _settings_off(view)
    names = sorted({*_sentinels_to_repair(rep), *off})
    if not names:
        return noop(
            "splitbrain.repair_sentinels",
            "every Sentinel agrees and knows only current peers: nothing to repair",
        )
    if rep.partitioned:
        raise GuardRefused(
            f"a partition looks active ({', '.join(rep.partitioned)} answers us but not the "
            "Sentinels): heal the network first, then re-run this step (resetting a Sentinel now "
            "would make it forget the cut-off node)"
        )
    if rep.authoritative != authoritative or not rep.authoritative_address:
        raise GuardRefused(
            f"the Sentinel majority names {rep.authoritative or 'no primary'}, not "
            f"{authoritative}: start over"
        )
    m, s = view.inv.master_name, view.inv.settings
    host, port = view.inv.node(authoritative).announced
    settings = " ".join(f"{k} {v}" for k, v in expected_sentinel_config(s).items())
    auth_pass = " + auth-pass from the inventory's secret" if view.inv.password() else ""
    how: dict[str, str] = {}
    ops: list[Op] = []
    stale = set(_sentinels_to_repair(rep))
    for name in names:
        wrong = view.sentinel(name).primary != rep.authoritative_address
        fixes = [w for w, due in (("reset", name in stale), ("settings", name in off)) if due]
        how[name] = "remonitor" if wrong else "+".join(fixes)
        if wrong:
            cmd = f"SENTINEL REMOVE {m}; MONITOR {m} {host} {port} {s.quorum}; SET {settings}"
            ops.append(Op(name, cmd + auth_pass, f"names another primary than {authoritative}"))
        elif name in stale:
            ops.append(Op(name, f"SENTINEL RESET {m}", "forgets stale peers, finds the live ones"))
        if not wrong and name in off:
            ops.append(Op(name, f"SENTINEL SET {m} {settings}{auth_pass}", "; ".join(off[name])))
        ops.append(
            Op(name, f"wait up to {settle_s:g} s until it names {authoritative} and sees its peers")
        )
    params = {
        "authoritative": authoritative,
        "address": rep.authoritative_address,
        "how": how,
        "need": max(s.quorum, majority(len(view.inv.sentinels))),
        "settle_s": float(settle_s),
    }
    return Plan("splitbrain.repair_sentinels", ops, params=params)


@action("splitbrain.repair_sentinels", plan=plan_repair)
def repair_sentinels(ctx: Context, plan: Plan) -> Outcome:
    """Repair disagreeing Sentinels and those with stale peers, one at a time, keeping quorum."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "")
    p = plan.params
    auth = ctx.inv.node(p["authoritative"])
    done: list[str] = []
    for name, how in p["how"].items():
        f = ctx.view().facts  # the last repair changed what the Sentinels say
        others = _quorum_without(f, name, p["address"])
        if others < p["need"]:
            raise GuardRefused(
                f"refusing to touch {name}: only {others} other Sentinel(s) agree on {auth.name}, "
                f"{p['need']} are needed to keep quorum while it is repaired"
            )
        said = _repair_one(ctx, ctx.inv.sentinel(name), auth, how)
        ctx.log(f"{name}: {said}")
        _wait_settled(ctx, name, p["address"], p["settle_s"])
        done.append(name)
    return Outcome(True, f"repaired {', '.join(done)}", {"repaired": done})


def _repair_one(ctx: Context, ep: Endpoint, auth: Endpoint, how: str) -> str:
    """`how`: "remonitor" (it names another primary), else "reset" (stale peers) and/or
    "settings" (it watches with other settings than the inventory's), joined by "+"."""
    m, inv = ctx.inv.master_name, ctx.inv
    settings = expected_sentinel_config(inv.settings)  # what `config.drift` checks
    # One SENTINEL SET, the password with the settings: a cut between two SETs left a Sentinel
    # with the settings but no auth-pass (it then sees the primary down), which no check shows.
    pw = inv.password()
    words = [x for kv in settings.items() for x in kv] + (["auth-pass", pw] if pw else [])
    fixes, said = how.split("+"), []
    if "reset" in fixes:
        _cmd(inv, ep, "SENTINEL", "RESET", m)
        said.append("SENTINEL RESET (forgets stale peers, rediscovers the live ones)")
    if "settings" in fixes:
        _cmd(inv, ep, "SENTINEL", "SET", m, *words)
        said.append("SENTINEL SET of the inventory's settings")
    if how != "remonitor":
        return "; ".join(said)
    host, port = auth.announced
    with contextlib.suppress(redis.ResponseError):  # not monitored at all
        _cmd(inv, ep, "SENTINEL", "REMOVE", m)
    _cmd(inv, ep, "SENTINEL", "MONITOR", m, host, str(port), str(inv.settings.quorum))
    _cmd(inv, ep, "SENTINEL", "SET", m, *words)
    return f"SENTINEL REMOVE + MONITOR {auth.name} ({host}:{port})"


def _wait_settled(ctx: Context, name: str, auth_addr: str, timeout: float) -> None:
    """Wait until the repaired Sentinel names the primary and sees the current peers again."""
    n_s, n_r = len(ctx.inv.sentinels), len(ctx.inv.nodes) - 1
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        s = ctx.view().facts.sentinel(name)
        stale = sb.stale_peers(ctx.inv, s) if s.up else ["down"]
        if (
            s.up
            and s.primary == auth_addr
            and s.num_other_sentinels == n_s - 1
            and (s.num_replicas or 0) >= min(n_r, 1)
            and not stale
        ):
            return
        last = f"names {s.primary_name}, sees {s.num_other_sentinels} peers; {'; '.join(stale)}"
        cancel.sleep(0.25)
    raise ClusterError(f"{name} did not settle within {timeout:.0f} s ({last})")


# --- verify ---------------------------------------------------------------------------------
@check("splitbrain.resolved")
def resolved(view: View) -> Outcome:
    """One primary, every Sentinel agrees, CKQUORUM OK; replicas in sync unless still cut off."""
    f = view.facts
    rep = sb.detect(view.inv, f)
    problems = [x.text for x in rep.findings if x.kind != sb.NOTE]
    if not rep.authoritative:
        problems.append("no authoritative primary")
    down = [s.name for s in f.sentinels if not s.up]
    if down:
        problems.append(f"Sentinel(s) not answering: {', '.join(down)}")
    if not any(s.quorum_ok for s in f.sentinels if s.up):
        problems.append("SENTINEL CKQUORUM fails")
    notes = []
    by = {n.name: n for n in f.nodes}
    primary = by.get(rep.authoritative or "")
    synced = []
    for n in f.nodes:
        if primary is None or n is primary or not n.up:
            continue
        if in_sync(n, primary):
            synced.append(n.name)
        elif n.name in rep.partitioned:
            notes.append(f"{n.name} replicates from {n.replicating_from} but is still cut off")
        elif n.role == "replica" and n.replicating_from == primary.name:
            problems.append(f"{n.name} is not in sync yet (link {'up' if n.link_up else 'down'})")
        else:
            problems.append(f"{n.name} is a {n.role} of {n.replicating_from}")
    need = view.inv.settings.min_replicas_to_write
    if primary is not None and len(synced) < need:
        problems.append(f"{primary.name} has {len(synced)} in-sync replica(s), {need} needed")
    data = {"problems": problems, "notes": notes, "in_sync": synced}
    if problems:
        return Outcome(False, "; ".join(problems), data)
    extra = f" ({'; '.join(notes)})" if notes else ""
    return Outcome(
        True,
        f"one primary {rep.authoritative}, all Sentinels agree, quorum OK, "
        f"in sync: {', '.join(synced) or 'none'}{extra}",
        data,
    )
