"""Split-brain recovery steps: assess, fence the stale primaries, salvage, demote, repair Sentinels.

Order matters and each step refuses to run out of order: a stale primary is fenced (writes
paused, with a bound) before its keys are read, exported before anything is written, and demoted
only after its salvage is done, because demotion wipes it. Sentinels are repaired one at a time,
only while the others still make a quorum, and never while a partition is still active (a
Sentinel reset then could forget the cut-off node or vote with a half view).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import redis

from redis_ha import salvage as salvagemod
from redis_ha import splitbrain as sb
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import call
from redis_ha.drift import expected_sentinel_config
from redis_ha.errors import ClusterError, GuardRefused
from redis_ha.facts import ClusterFacts
from redis_ha.health import in_sync, majority
from redis_ha.inventory import Endpoint
from redis_ha.journal import journal_dir

FENCE_MS = 120_000
SENTINEL_SETTLE_S = 20.0


def _report(ctx: Context) -> tuple[ClusterFacts, sb.Report]:
    f = ctx.facts()
    return f, sb.detect(ctx.inv, f)


def _authoritative(ctx: Context, rep: sb.Report) -> Endpoint:
    """The authoritative primary as a node of the inventory, checked against `--primary`."""
    name = ctx.state.get("authoritative") or rep.authoritative
    if not name:
        raise GuardRefused(
            "no majority of Sentinels names a primary: fix the Sentinels first "
            "(invoke status; the majority decides which primary is authoritative)"
        )
    chosen = ctx.params.get("primary")
    if chosen and chosen != name:
        raise GuardRefused(
            f"--primary {chosen} but the Sentinel majority names {name}; the app follows the "
            f"Sentinels, so {name} is authoritative (make the Sentinels agree first)"
        )
    return ctx.inv.node(name)


def _cmd(ctx: Context, ep: Endpoint, *args: Any) -> Any:
    return call(ctx.inv, ep, *args, timeout=3.0)


# --- assess ---------------------------------------------------------------------------------
def _fix_plan(ctx: Context, rep: sb.Report) -> Endpoint:
    """Record the authoritative primary and the stale ones in ctx.state; read-only."""
    auth = _authoritative(ctx, rep)
    ctx.state["authoritative"] = auth.name
    ctx.state["stale"] = list(rep.stale_primaries)
    ctx.state.setdefault("salvaged", [])
    ctx.state.setdefault("fenced", [])
    return auth


def _ensure_plan(ctx: Context) -> sb.Report | None:
    """Fill ctx.state from fresh facts when assess has not run (dry run); read-only."""
    if "authoritative" in ctx.state:
        return None
    _, rep = _report(ctx)
    _fix_plan(ctx, rep)
    return rep


def _describe_assess(ctx: Context) -> str:
    rep = _ensure_plan(ctx)
    lines = [f"{f.kind}: {f.text}" for f in (rep.findings if rep else [])]
    lines.append(
        f"authoritative primary {ctx.state['authoritative']}; stale primaries: "
        f"{', '.join(ctx.state['stale']) or 'none'}"
    )
    return "\n".join(lines)


def _failover_running(f: ClusterFacts) -> list[str]:
    return [s.name for s in f.sentinels if s.up and s.failing_over]


@action("splitbrain.assess", describe=_describe_assess, changes=False)
def assess(ctx: Context, wait_failover_s: float = 20.0) -> Outcome:
    """Find every self-declared primary and every Sentinel's view; fix the plan in ctx.state."""
    # While Sentinel is mid-failover the just-promoted node looks like a second primary: let it
    # finish rather than fence the node the Sentinels are about to name.
    deadline = time.monotonic() + wait_failover_s
    while busy := _failover_running(ctx.facts(detail=False)):
        if time.monotonic() > deadline:
            raise GuardRefused(
                f"a failover is still running ({', '.join(busy)}) after {wait_failover_s:.0f} s: "
                "re-run when it has ended"
            )
        ctx.log(f"waiting for the failover in progress to end ({', '.join(busy)})")
        time.sleep(0.5)
    ctx.state.pop("authoritative", None)
    _, rep = _report(ctx)
    auth = _fix_plan(ctx, rep)
    for f in rep.findings:
        ctx.log(f"{'note' if f.kind == sb.NOTE else f.kind}: {f.text}")
    stale = ", ".join(rep.stale_primaries) or "none"
    sentinels = ", ".join(sorted({*rep.disagreeing_sentinels, *rep.stale_peer_sentinels})) or "none"
    msg = (
        f"authoritative primary {auth.name} ({rep.votes} of {rep.sentinels_total} Sentinels); "
        f"stale primaries: {stale}; Sentinels to repair: {sentinels}"
    )
    return Outcome(True, msg, rep.to_dict())


@check("splitbrain.authoritative_confirmed")
def authoritative_confirmed(ctx: Context) -> Outcome:
    """The Sentinel majority still names the primary the operator confirmed."""
    _, rep = _report(ctx)
    want = ctx.state.get("authoritative")
    if rep.authoritative is None:
        return Outcome(False, "no Sentinel majority names a primary any more")
    if want and rep.authoritative != want:
        return Outcome(False, f"the Sentinels now name {rep.authoritative}, not {want}: start over")
    return Outcome(True, f"the Sentinel majority names {rep.authoritative}")


# --- fence ----------------------------------------------------------------------------------
def _stale_nodes(ctx: Context) -> list[Endpoint]:
    auth = ctx.state.get("authoritative")
    names = [n for n in ctx.state.get("stale", []) if n != auth]
    return [ctx.inv.node(n) for n in names]


def _pause(ctx: Context, ep: Endpoint, ms: int) -> None:
    _cmd(ctx, ep, "CLIENT", "PAUSE", int(ms), "WRITE")


def _describe_fence(ctx: Context, pause_ms: int = FENCE_MS) -> str:
    _ensure_plan(ctx)
    names = ", ".join(ctx.state.get("stale", [])) or "no stale primary (nothing to fence)"
    return f"pause writes on {names} for at most {pause_ms // 1000} s (CLIENT PAUSE WRITE)"


@action("splitbrain.fence", describe=_describe_fence)
def fence(ctx: Context, pause_ms: int = FENCE_MS) -> Outcome:
    """Stop each stale primary acknowledging writes now, bounded by a pause timeout."""
    auth = ctx.state.get("authoritative")
    done = []
    for ep in _stale_nodes(ctx):
        if ep.name == auth:
            raise GuardRefused(f"refusing to fence {ep.name}: it is the authoritative primary")
        role = _cmd(ctx, ep, "ROLE")
        if role and str(role[0]) != "master":
            ctx.log(f"{ep.name} is already a {role[0]}: it accepts no writes, nothing to fence")
            continue
        _pause(ctx, ep, pause_ms)
        ctx.state["fence_ms"] = int(pause_ms)
        done.append(ep.name)
        ctx.log(f"{ep.name}: writes paused for at most {pause_ms // 1000} s")
    ctx.state["fenced"] = done
    if not done:
        return Outcome(True, "no stale primary accepts writes: nothing to fence")
    return Outcome(True, f"fenced {', '.join(done)}", {"fenced": done})


@action("splitbrain.unfence")
def unfence(ctx: Context) -> Outcome:
    """Undo the fence: let the stale primaries take writes again (only as an undo)."""
    out = []
    for name in ctx.state.get("fenced", []):
        try:
            _cmd(ctx, ctx.inv.node(name), "CLIENT", "UNPAUSE")
            out.append(name)
        except ClusterError as e:
            ctx.log(f"{name}: {e} (its pause ends by itself)")
    ctx.state["fenced"] = []
    return Outcome(True, f"unpaused {', '.join(out) or 'nothing'}")


def _refence(ctx: Context, ep: Endpoint) -> None:
    """Re-arm the pause before a long step, so the bound is counted from now."""
    if ep.name in ctx.state.get("fenced", []):
        _pause(ctx, ep, ctx.state.get("fence_ms", FENCE_MS))


# --- salvage --------------------------------------------------------------------------------
def _policy(ctx: Context) -> str:
    p = str(ctx.params.get("policy") or sb.DEFAULT_POLICY)
    if p not in sb.POLICIES:
        raise GuardRefused(f"unknown --policy {p!r} (choose from {', '.join(sb.POLICIES)})")
    return p


def _describe_salvage(ctx: Context) -> str:
    _ensure_plan(ctx)
    auth = ctx.inv.node(ctx.state["authoritative"])
    lines = []
    for ep in _stale_nodes(ctx):
        pl = salvagemod.plan(ctx.inv, ep, auth, _policy(ctx))
        lines.append(pl.summary())
        for it in pl.writes()[:5]:
            key = it.key.decode(errors="backslashreplace")
            lines.append(f"  {it.decision.action} {key}: {it.decision.reason}")
    return "\n".join(lines) or "no stale primary: nothing to salvage"


@action("splitbrain.salvage", describe=_describe_salvage)
def salvage(ctx: Context) -> Outcome:
    """Export every key of each stale primary to a file, then merge under the chosen policy."""
    policy = _policy(ctx)
    auth = ctx.inv.node(ctx.state["authoritative"])
    out_dir = Path(ctx.params.get("export_dir") or journal_dir())
    data: dict[str, Any] = {"policy": policy, "nodes": {}}
    msgs = []
    for ep in _stale_nodes(ctx):
        _refence(ctx, ep)
        pl = salvagemod.plan(ctx.inv, ep, auth, policy)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = salvagemod.export(pl, out_dir / f"salvage-{ep.name}-{stamp}.jsonl")
        ctx.log(f"exported {len(pl.items)} keys of {ep.name} to {path}")
        ctx.log(pl.summary())
        results = salvagemod.apply(ctx.inv, pl, auth)
        ctx.state.setdefault("salvaged", []).append(ep.name)
        ctx.state.setdefault("exports", {})[ep.name] = str(path)
        data["nodes"][ep.name] = {"export": str(path), "plan": pl.counts(), "results": results}
        done = ", ".join(f"{v} {k}" for k, v in sorted(results.items())) or "nothing to write"
        msgs.append(f"{ep.name} -> {auth.name}: {done}")
        if results.get("failed"):
            raise ClusterError(
                f"salvage of {ep.name}: {results['failed']} key(s) could not be written to "
                f"{auth.name}; the export {path} has them"
            )
    return Outcome(True, "; ".join(msgs) or "no stale primary: nothing to salvage", data)


# --- demote ---------------------------------------------------------------------------------
def _describe_demote(ctx: Context) -> str:
    _ensure_plan(ctx)
    names = ", ".join(ctx.state.get("stale", [])) or "no stale primary"
    return f"make {names} replicate from {ctx.state.get('authoritative', 'the primary')}"


@action("splitbrain.demote", describe=_describe_demote)
def demote(ctx: Context) -> Outcome:
    """Make each salvaged stale primary replicate from the authoritative one; drop its clients."""
    auth = ctx.inv.node(ctx.state["authoritative"])
    host, port = auth.announced
    done = []
    for ep in _stale_nodes(ctx):
        if ep.name not in ctx.state.get("salvaged", []):
            raise GuardRefused(
                f"refusing to demote {ep.name}: its keys were not salvaged yet (demotion wipes it)"
            )
        role = _cmd(ctx, ep, "ROLE")
        if role and str(role[0]) != "master":
            ctx.log(f"{ep.name} is already a replica: nothing to demote")
        else:
            _cmd(ctx, ep, "REPLICAOF", host, str(port))
            done.append(ep.name)
        try:
            _cmd(ctx, ep, "CLIENT", "UNPAUSE")
            # Clients still connected to it would read its old data: make them rediscover.
            _cmd(ctx, ep, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        except ClusterError as e:
            ctx.log(f"{ep.name}: {e}")
        if ep.name in ctx.state.get("fenced", []):
            ctx.state["fenced"].remove(ep.name)
    if not done:
        return Outcome(True, "no stale primary left to demote")
    return Outcome(True, f"{', '.join(done)}: now replicating from {auth.name}", {"demoted": done})


@check("splitbrain.single_primary")
def single_primary(ctx: Context) -> Outcome:
    """Exactly one reachable node is primary, and it is the authoritative one."""
    f = ctx.facts(detail=False)
    claimed = [n.name for n in f.claimed_primaries()]
    want = ctx.state.get("authoritative")
    if claimed == [want] or (want is None and len(claimed) == 1):
        return Outcome(True, f"one primary: {claimed[0]}")
    return Outcome(False, f"nodes saying they are primary: {', '.join(claimed) or 'none'}")


# --- Sentinels ------------------------------------------------------------------------------
def _sentinels_to_repair(rep: sb.Report) -> list[str]:
    return sorted({*rep.disagreeing_sentinels, *rep.stale_peer_sentinels})


def _describe_repair(ctx: Context) -> str:
    _, rep = _report(ctx)
    names = _sentinels_to_repair(rep)
    if not names:
        return "every Sentinel agrees and knows only current peers: nothing to repair"
    return f"repair {', '.join(names)} one at a time (SENTINEL RESET, or REMOVE + MONITOR)"


def _quorum_without(f: ClusterFacts, name: str, auth_addr: str) -> int:
    """Sentinels other than `name` that are up and name the authoritative primary."""
    return sum(1 for s in f.sentinels if s.name != name and s.up and s.primary == auth_addr)


@action("splitbrain.repair_sentinels", describe=_describe_repair)
def repair_sentinels(ctx: Context, settle_s: float = SENTINEL_SETTLE_S) -> Outcome:
    """Repair disagreeing Sentinels and those with stale peers, one at a time, keeping quorum."""
    f, rep = _report(ctx)
    names = _sentinels_to_repair(rep)
    if not names:
        return Outcome(True, "every Sentinel agrees and knows only current peers")
    if rep.partitioned:
        raise GuardRefused(
            f"a partition looks active ({', '.join(rep.partitioned)} answers us but not the "
            "Sentinels): heal the network first, then re-run this step (resetting a Sentinel now "
            "would make it forget the cut-off node)"
        )
    auth = _authoritative(ctx, rep)
    auth_addr = rep.authoritative_address or ""
    need = max(ctx.inv.settings.quorum, majority(len(ctx.inv.sentinels)))
    done: list[str] = []
    for name in names:
        if done:
            f = ctx.facts()  # the last repair changed what the Sentinels say
        others = _quorum_without(f, name, auth_addr)
        if others < need:
            raise GuardRefused(
                f"refusing to touch {name}: only {others} other Sentinel(s) agree on {auth.name}, "
                f"{need} are needed to keep quorum while it is repaired"
            )
        ep = ctx.inv.sentinel(name)
        s = f.sentinel(name)
        how = _repair_one(ctx, ep, auth, s.primary != auth_addr)
        ctx.log(f"{name}: {how}")
        _wait_settled(ctx, name, auth_addr, settle_s)
        done.append(name)
    return Outcome(True, f"repaired {', '.join(done)}", {"repaired": done})


def _repair_one(ctx: Context, ep: Endpoint, auth: Endpoint, wrong_primary: bool) -> str:
    m = ctx.inv.master_name
    if not wrong_primary:
        _cmd(ctx, ep, "SENTINEL", "RESET", m)
        return "SENTINEL RESET (forgets stale peers, rediscovers the live ones)"
    s = ctx.inv.settings
    host, port = auth.announced
    with contextlib.suppress(redis.ResponseError):  # not monitored at all
        _cmd(ctx, ep, "SENTINEL", "REMOVE", m)
    _cmd(ctx, ep, "SENTINEL", "MONITOR", m, host, str(port), str(s.quorum))
    # The settings `config.drift` checks, so a re-monitored Sentinel shows no drift.
    settings = expected_sentinel_config(s)
    _cmd(ctx, ep, "SENTINEL", "SET", m, *(x for kv in settings.items() for x in kv))
    pw = ctx.inv.password()
    if pw:
        _cmd(ctx, ep, "SENTINEL", "SET", m, "auth-pass", pw)
    return f"SENTINEL REMOVE + MONITOR {auth.name} ({host}:{port})"


def _wait_settled(ctx: Context, name: str, auth_addr: str, timeout: float) -> None:
    """Wait until the repaired Sentinel names the primary and sees the current peers again."""
    n_s, n_r = len(ctx.inv.sentinels), len(ctx.inv.nodes) - 1
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        f = ctx.facts()
        s = f.sentinel(name)
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
        time.sleep(0.25)
    raise ClusterError(f"{name} did not settle within {timeout:.0f} s ({last})")


# --- verify ---------------------------------------------------------------------------------
@check("splitbrain.resolved")
def resolved(ctx: Context) -> Outcome:
    """One primary, every Sentinel agrees, CKQUORUM OK; replicas in sync unless still cut off."""
    f, rep = _report(ctx)
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
    need = ctx.inv.settings.min_replicas_to_write
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
