"""Replica rebuild: diagnose, take out of the running, restart empty, full sync, restore.

The one rule every step follows: a replica that does not hold a complete copy of the primary's
data is never promotable. Priority 0 goes on before anything is taken away and comes back only
after the copy is verified, so an interrupted run leaves a safe (unpromotable) replica behind,
never an empty one Sentinel might promote.

Checks judge the runner's view; the diagnosis adds a little evidence facts do not hold (INFO
counters, the primary's output-buffer limit, log tails and host memory from the control backend).
The replica's priority before the run is recorded as `priority_restore` (node -> priority), the
key failover uses for the same value, and the restore plans from that record alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from redis_ha import cancel, failpoint
from redis_ha import control as controlmod
from redis_ha import diagnose as diag
from redis_ha import health as healthmod
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import client, describe_error
from redis_ha.errors import ClusterError, GuardRefused, HAError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.plan import Op, Plan, noop, reads
from redis_ha.view import View

T = TypeVar("T")

UNPROMOTABLE = {"replica-priority": "0", "replica-announced": "no"}
POLL_S = 0.1
GONE_S = 10.0  # a node that does not answer INFO this long in its full sync died or hung
BAD_FLAGS = ("s_down", "o_down", "disconnected")


# --- gathering (I/O) ------------------------------------------------------------------------
def _info(inv: Inventory, ep: Endpoint, *sections: str) -> dict[str, Any]:
    c = client(inv, ep, timeout=1.0)
    try:
        out: dict[str, Any] = {}
        for s in sections:
            out.update(c.info(s))
        return out
    except (redis.RedisError, OSError):
        return {}
    finally:
        c.close()


def _obl_hard(inv: Inventory, ep: Endpoint) -> int | None:
    """The primary's `client-output-buffer-limit replica` hard limit in bytes."""
    c = client(inv, ep, timeout=1.0)
    try:
        raw = c.config_get("client-output-buffer-limit").get("client-output-buffer-limit", "")
    except (redis.RedisError, OSError):
        return None
    finally:
        c.close()
    return diag.replica_obl_hard(str(raw))


def evidence(view: View, node: str) -> diag.Evidence:
    """Best-effort extra evidence: counters, buffer limit, memory and log tails (reads)."""
    inv, h = view.inv, view.health
    ev = diag.Evidence()
    ep = inv.node(node)
    if view.node(node).up:
        rinfo = _info(inv, ep, "replication")
        if "master_link_down_since_seconds" in rinfo:
            ev.link_down_s = int(rinfo["master_link_down_since_seconds"])
    ctl = _evidence_control(inv, ep)
    if ctl is not None:
        ev.replica_log = _optional(lambda: ctl.log_tail(ep, 300))
    if h.primary and h.primary != node:
        pep = inv.node(h.primary)
        pinfo = _info(inv, pep, "stats")
        if "sync_full" in pinfo:
            ev.full_syncs = int(pinfo["sync_full"])
        ev.obl_hard = _obl_hard(inv, pep)
        pctl = _evidence_control(inv, pep)
        if pctl is not None:
            ev.mem_available = _optional(lambda: pctl.mem_available(pep))
            ev.primary_log = _optional(lambda: pctl.log_tail(pep, 300))
    return ev


def _optional(read: Callable[[], T]) -> T | None:
    """An evidence read that the backend cannot do (unreachable host, unknown service) is
    missing evidence, not a failed diagnosis (`node.controllable` guards what must work)."""
    try:
        return read()
    except HAError:
        return None


def _evidence_control(inv: Inventory, ep: Endpoint) -> controlmod.Control | None:
    """The node's control backend for reading logs and memory, or None when it refuses.

    The default `local` backend refuses inventories not marked `lab: true`: the evidence it
    would give is optional, the read-only diagnosis must not fail for it.
    """
    try:
        return controlmod.for_node(inv, ep)
    except HAError:
        return None


def diagnosis(view: View, node: str, allow_write_outage: bool = False) -> diag.Diagnosis:
    """The view + evidence -> the pure diagnosis (`redis_ha.diagnose`)."""
    view.inv.node(node)
    return diag.diagnose(
        view.inv,
        view.facts,
        view.health,
        node,
        evidence(view, node),
        allow_write_outage=allow_write_outage,
    )


def _restore_to(view: View, node: str, priority_restore: dict[str, int] | None) -> int:
    """The priority to put back: the recorded one, else the inventory's default."""
    prio = (priority_restore or {}).get(node)
    return int(prio) if prio else view.inv.settings.replica_priority


# --- diagnosis and guards -------------------------------------------------------------------
def plan_diagnose(view: View, node: str, allow_write_outage: bool = False) -> Plan:
    """Diagnose from this view (plus INFO, CONFIG GET and log reads); the apply shows it."""
    d = diagnosis(view, node, allow_write_outage)
    verdict = "rebuild recommended" if d.needs_rebuild else "no reason to rebuild found"
    plan = reads(
        "replica.diagnose",
        node,
        "diagnose: facts, INFO, CONFIG GET client-output-buffer-limit, log tails",
        node=node,
        diagnosis=d.to_dict(),
        verdict=verdict,
    )
    plan.ops[0] = Op(node, plan.ops[0].command, f"read-only: {verdict}")
    return plan


@action("replica.diagnose", plan=plan_diagnose, changes=False)
def diagnose(ctx: Context, plan: Plan) -> Outcome:
    """Show why the replica needs rebuilding and what the rebuild will do (read-only)."""
    d, node = plan.params["diagnosis"], plan.params["node"]
    for line in d["findings"]:
        ctx.log(f"  why:     {line}")
    for line in d["warnings"]:
        ctx.log(f"  WARNING: {line}")
    for line in d["refusals"]:
        ctx.log(f"  REFUSED: {line}")
    for i, line in enumerate(d["plan"], 1):
        ctx.log(f"  plan {i}: {line}")
    return Outcome(True, f"{node}: {plan.params['verdict']}", d)


@check("replica.safe_to_rebuild")
def safe_to_rebuild(
    view: View,
    node: str,
    allow_write_outage: bool = False,
    priority_restore: dict[str, int] | None = None,
) -> Outcome:
    """Not the primary, a primary to copy from, no failover running, writes kept, memory ok.

    `priority_restore` is this run's record: when it holds `node`, priority 0 is this run's
    own doing, not a leftover worth a warning. Reads evidence beyond the view (see evidence).
    """
    d = diagnosis(view, node, allow_write_outage)
    if d.refusals:
        return Outcome(False, "; ".join(d.refusals), d.to_dict())
    if node in (priority_restore or {}):
        d.warnings = [w for w in d.warnings if "replica-priority 0" not in w]
    extra = ("; " + "; ".join(d.warnings)) if d.warnings else ""
    return Outcome(True, f"{node} may be rebuilt from {d.primary}{extra}", d.to_dict())


@check("replica.needs_rebuild")
def needs_rebuild(view: View, node: str, force: bool = False) -> Outcome:
    """Something is wrong with the replica (or the operator forces a rebuild anyway)."""
    d = diagnosis(view, node, allow_write_outage=True)
    if d.needs_rebuild:
        return Outcome(True, d.findings[0], {"findings": d.findings})
    if force:
        return Outcome(True, f"{node} looks healthy; rebuilding anyway (--force)", {})
    why = d.findings[0] if d.findings else f"{node} is not a replica to rebuild"
    return Outcome(
        False,
        f"{why}; nothing to rebuild (--force to rebuild a healthy replica)",
        {"findings": d.findings},
    )


# --- the steps ------------------------------------------------------------------------------
def _refuse_primary(view: View, node: str, what: str) -> None:
    if view.health.primary == node:
        raise GuardRefused(f"{node} is the current primary; refusing to {what}")


def plan_unpromotable(view: View, node: str) -> Plan:
    """Priority 0 and hidden from Sentinel's replica list; records the priority to put back."""
    _refuse_primary(view, node, "touch it")
    n = view.node(node)
    live = n.replica_priority
    restore = {node: live if live else view.inv.settings.replica_priority}
    if not n.up:
        return noop(
            "replica.make_unpromotable",
            f"{node} is down: it will start with replica-priority 0",
            priority_restore=restore,
        )
    # No CONFIG REWRITE here: it would persist whatever broke the replica (a wrong masterauth,
    # a bad replicaof) into its config file. The restart passes these settings explicitly.
    ops = [
        Op(
            node,
            f"CONFIG SET {k} {v}",
            f"now {n.config[k]}; not persisted" if k in n.config else "",
        )
        for k, v in UNPROMOTABLE.items()
    ]
    return Plan(
        "replica.make_unpromotable",
        ops,
        params={"node": node, "settings": dict(UNPROMOTABLE), "restore": restore[node]},
        record={"priority_restore": restore},
    )


@action("replica.make_unpromotable", plan=plan_unpromotable)
def make_unpromotable(ctx: Context, plan: Plan) -> Outcome:
    """Priority 0 and hidden from Sentinel's replica list, so it is never promoted or read."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "", {"live": False})
    p = plan.params
    _set(ctx.inv, ctx.inv.node(p["node"]), p["settings"], rewrite=False)
    return Outcome(
        True,
        f"{p['node']}: replica-priority 0, replica-announced no; restore later to {p['restore']}",
        {"live": True, "restore_priority": p["restore"]},
    )


def _listed_as(inv: Inventory, r: dict[str, Any], node: str) -> bool:
    """True when a SENTINEL REPLICAS entry is `node` (address-to-node: Inventory.name_of)."""
    return inv.name_of(f"{r.get('ip', '')}:{r.get('port', '0')}") == node


@check("replica.unpromotable_seen")
def unpromotable_seen(view: View, node: str) -> Outcome:
    """Every Sentinel has seen the node at priority 0 (or hidden, or down), not a stale 100."""
    view.inv.node(node)
    stale = []
    for s in view.facts.sentinels:
        if not s.up:
            continue
        for r in s.replicas:
            if _listed_as(view.inv, r, node) and str(r.get("slave-priority")) != "0":
                flags = str(r.get("flags", ""))
                if not any(b in flags for b in BAD_FLAGS):
                    stale.append(s.name)
    if stale:
        return Outcome(False, f"{', '.join(stale)} still see {node} as promotable", {})
    return Outcome(True, f"no Sentinel considers {node} promotable", {})


def plan_restart(view: View, node: str) -> Plan:
    """Stop the node (if its process runs) and start it empty as a replica of the primary,
    unpromotable from its first instant, through the node's control backend.

    Asks the backend whether the process runs (facts only say whether it answers)."""
    ep = view.inv.node(node)
    _refuse_primary(view, node, "restart it")
    primary = view.primary().name
    ctl = controlmod.for_node(view.inv, ep)  # refuses here what it would refuse in the run
    running = ctl.is_running(ep)
    settings = ", ".join(f"{k} {v}" for k, v in UNPROMOTABLE.items())
    ops = []
    if running:
        ops.append(Op(node, f"stop ({ctl.backend} backend)", "without persistence: back empty"))
    ops.append(
        Op(
            node,
            f"start as a replica of {primary} with {settings} ({ctl.backend} backend)",
            "unpromotable from its first instant; the full sync follows",
        )
    )
    return Plan(
        "replica.restart",
        ops,
        params={"node": node, "primary": primary, "stop": running, "backend": ctl.backend},
    )


@action("replica.restart", plan=plan_restart)
def restart(ctx: Context, plan: Plan) -> Outcome:
    """Restart the node empty, as a replica of the current primary, unpromotable from its start."""
    p = plan.params
    ep, pep = ctx.inv.node(p["node"]), ctx.inv.node(p["primary"])
    ctl = controlmod.for_node(ctx.inv, ep)
    if p["stop"]:
        ctl.stop(ep)
        failpoint.changed(f"stopped {p['node']}")
    ctl.start(ep, replicaof=pep, overrides=dict(UNPROMOTABLE))
    how = "restarted" if p["stop"] else "started"
    return Outcome(
        True,
        f"{p['node']} {how} ({ctl.backend}) as a replica of {pep.name}, replica-priority 0",
        {"primary": pep.name, "was_running": p["stop"]},
    )


def sync_progress(info: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """(phase, done, total) from a replica's INFO: transfer bytes, then loading bytes."""
    if int(info.get("loading", 0) or 0):
        return "loading", _i(info.get("loading_loaded_bytes")), _i(info.get("loading_total_bytes"))
    if int(info.get("master_sync_in_progress", 0) or 0):
        total = _i(info.get("master_sync_total_bytes"))
        read = _i(info.get("master_sync_read_bytes"))
        return "transfer", read, total if total and total > 0 else None
    if info.get("master_link_status") == "up":
        return "done", None, None
    return "connecting", None, None


def _i(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def plan_wait_sync(view: View, node: str, max_wait_s: float = 900.0) -> Plan:
    """Follow the full sync (INFO replication and persistence, every 0.1 s) until it is done."""
    view.inv.node(node)
    what = f"INFO replication, persistence until the full sync is done (at most {max_wait_s:g} s)"
    return reads("replica.wait_sync", node, what, node=node, max_wait_s=float(max_wait_s))


@action("replica.wait_sync", plan=plan_wait_sync, changes=False)
def wait_sync(ctx: Context, plan: Plan) -> Outcome:
    """Follow the full sync with a progress bar until the link is up and the data loaded."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from redis_ha import ui

    node, max_wait_s = plan.params["node"], plan.params["max_wait_s"]
    ep = ctx.inv.node(node)
    t0 = time.monotonic()
    deadline = t0 + max_wait_s
    c = client(ctx.inv, ep, timeout=2.0)
    phases: list[str] = []
    last_err = ""
    answered = t0
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=ui.console,
        transient=True,
        disable=not ui.console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task(f"{node}: connecting", total=None)
            while True:
                try:
                    info = c.info("replication") | c.info("persistence")
                    last_err, answered = "", time.monotonic()
                except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                    info, last_err = {}, describe_error(e)
                except redis.ResponseError as e:
                    # LOADING replies come as errors on some commands; INFO still answers.
                    info, last_err = {}, str(e)
                phase, done, total = sync_progress(info) if info else ("unreachable", None, None)
                if not phases or phases[-1] != phase:
                    phases.append(phase)
                desc = f"{node}: {phase} from {info.get('master_host', '?')}:" + str(
                    info.get("master_port", "?")
                )
                progress.update(task, description=desc, completed=done or 0, total=total)
                if phase == "done":
                    break
                if last_err and time.monotonic() - answered > GONE_S:
                    raise ClusterError(
                        f"{node}: no answer for {GONE_S:g} s in its full sync ({last_err}): "
                        "died or hung; it stays at replica-priority 0"
                    )
                if time.monotonic() > deadline:
                    why = f" ({last_err})" if last_err else ""
                    raise ClusterError(
                        f"{node}: full sync not finished after {max_wait_s:.0f} s, "
                        f"last phase {phase}{why}; it stays at replica-priority 0"
                    )
                cancel.sleep(POLL_S)
    finally:
        c.close()
    took = time.monotonic() - t0
    return Outcome(
        True,
        f"{node}: full sync done in {took:.1f} s ({' -> '.join(phases)})",
        {"seconds": took, "phases": phases},
    )


def keys_tolerance(ops_per_sec: int, window_s: float) -> int:
    """Keys that may legitimately differ between two DBSIZE readings taken `window_s` apart."""
    return max(10, int(ops_per_sec * (window_s + 1.0)))


def _snapshot(c: redis.Redis) -> tuple[int, int]:
    """(replication offset, DBSIZE) read atomically (MULTI) on one node."""
    p = c.pipeline(transaction=True)
    p.info("replication")
    p.dbsize()
    info, keys = p.execute()
    off = info.get("master_repl_offset") if info.get("role") == "master" else None
    if off is None:
        off = info.get("slave_repl_offset", info.get("master_repl_offset", -1))
    return int(off), int(keys)


@check("replica.keys_match")
def keys_match(view: View, node: str, attempts: int = 20) -> Outcome:
    """The replica's DBSIZE equals the primary's at the same replication offset.

    Both are read atomically with their offsets (reads beyond the view); when the replica
    reaches exactly the primary's offset the counts must be equal. Under heavy traffic the
    replica may step over that offset: after `attempts` tries the counts are compared within
    what the write rate changes meanwhile.
    """
    ep = view.inv.node(node)
    pep = view.inv.node(view.primary().name)
    pc, rc = client(view.inv, pep, timeout=2.0), client(view.inv, ep, timeout=2.0)
    try:
        for _ in range(attempts):
            p_off, pk = _snapshot(pc)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                r_off, rk = _snapshot(rc)
                if r_off >= p_off:
                    break
                time.sleep(0.002)
            if r_off == p_off:
                data = {"primary_keys": pk, "replica_keys": rk, "offset": p_off, "exact": True}
                if pk == rk:
                    return Outcome(
                        True, f"{node} has {rk} keys, as {pep.name} at offset {p_off}", data
                    )
                return Outcome(
                    False, f"{node} has {rk} keys but {pep.name} had {pk} at offset {p_off}", data
                )
        t0 = time.monotonic()
        ops = int(pc.info("stats").get("instantaneous_ops_per_sec", 0))
        pk = int(pc.dbsize())
        rk = int(rc.dbsize())
        window = time.monotonic() - t0
    except (redis.RedisError, OSError) as e:
        return Outcome(False, f"cannot compare key counts: {describe_error(e)}")
    finally:
        pc.close()
        rc.close()
    tol = keys_tolerance(ops, window)
    data = {"primary_keys": pk, "replica_keys": rk, "tolerance": tol, "exact": False}
    if abs(pk - rk) <= tol:
        return Outcome(True, f"{node} has {rk} keys, {pep.name} {pk} (tolerance {tol})", data)
    return Outcome(False, f"{node} has {rk} keys but {pep.name} has {pk} (tolerance {tol})", data)


CHECK_IN_SYNC = "check it is in sync with the primary, else keep replica-priority 0"


def plan_restore(
    view: View, node: str, priority_restore: dict[str, int] | None = None, force: bool = False
) -> Plan:
    """Make the replica promotable and readable again, once it holds a full copy.

    Planned from the record (`$priority_restore`, else the inventory's default), not from the
    live node an earlier step changed, so the dry run shows the operations the run performs.
    Whether the copy is complete is only known when it runs: that check is the first op.
    """
    view.inv.node(node)
    prio = _restore_to(view, node, priority_restore)
    ops = [] if force else [Op(node, CHECK_IN_SYNC, "a partial copy must never be promotable")]
    ops += [
        Op(node, f"CONFIG SET replica-priority {prio}", "the priority before this run"),
        Op(node, "CONFIG SET replica-announced yes", "clients may read from it again"),
        Op(node, "CONFIG REWRITE", "a restart keeps it (best effort)"),
    ]
    return Plan(
        "replica.restore_priority", ops, params={"node": node, "prio": prio, "force": force}
    )


@action("replica.restore_priority", plan=plan_restore)
def restore_priority(ctx: Context, plan: Plan) -> Outcome:
    """Make the replica promotable and readable again, but only once it holds a full copy."""
    p = plan.params
    node, prio = p["node"], p["prio"]
    if not p["force"]:
        v = ctx.view()  # the copy's completeness is a fact of now, not of the plan's view
        if v.health.primary == node:
            return Outcome(True, f"{node} is the primary now; its priority is irrelevant", {})
        if v.health.primary is None:
            why: str | None = "no usable primary to compare with"
        else:
            why = healthmod.sync_problem(v.node(node), v.node(v.health.primary))
        if why:
            return Outcome(
                False,
                f"kept {node} at replica-priority 0 because it is not a complete copy "
                f"({why}); finish the rebuild, or restore by hand once it is in sync",
                {"kept": True},
            )
    settings = {"replica-priority": str(prio), "replica-announced": "yes"}
    note = _set(ctx.inv, ctx.inv.node(node), settings)
    return Outcome(True, f"{node}: replica-priority {prio}, replica-announced yes{note}", {})


def _set(inv: Inventory, ep: Endpoint, settings: dict[str, str], *, rewrite: bool = True) -> str:
    """CONFIG SET on a live node, then CONFIG REWRITE so a restart keeps it (best effort)."""
    c = client(inv, ep, timeout=2.0)
    try:
        for k, v in settings.items():
            c.config_set(k, v)
        if not rewrite:
            return ""
        try:
            c.execute_command("CONFIG", "REWRITE")
            return " (config file rewritten)"
        except redis.ResponseError as e:
            return f" (config file not rewritten: {e})"
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        raise ClusterError(f"{ep.name}: {describe_error(e)}") from None
    finally:
        c.close()


@check("replica.sentinels_list_healthy")
def sentinels_list_healthy(
    view: View, node: str, priority_restore: dict[str, int] | None = None
) -> Outcome:
    """Every Sentinel lists the node as a replica, link ok, not down, at its restored priority."""
    view.inv.node(node)
    prio = str(_restore_to(view, node, priority_restore))
    sentinels = view.facts.sentinels
    bad = []
    for s in sentinels:
        if not s.up:
            bad.append(f"{s.name} is down")
            continue
        r = next((r for r in s.replicas if _listed_as(view.inv, r, node)), None)
        if r is None:
            bad.append(f"{s.name} does not list {node} yet")
            continue
        flags = str(r.get("flags", ""))
        if any(b in flags for b in BAD_FLAGS):
            bad.append(f"{s.name} flags {node} {flags}")
        elif r.get("master-link-status") != "ok":
            bad.append(f"{s.name} sees {node}'s link {r.get('master-link-status')}")
        elif str(r.get("slave-priority")) != prio:
            bad.append(f"{s.name} still sees priority {r.get('slave-priority')}")
    if bad:
        return Outcome(False, "; ".join(bad), {})
    return Outcome(True, f"all {len(sentinels)} Sentinels list {node} as a healthy replica", {})
