"""Replica rebuild: diagnose, take out of the running, restart empty, full sync, restore.

The one rule every step follows: a replica that does not hold a complete copy of the primary's
data is never promotable. Priority 0 goes on before anything is taken away and comes back only
after the copy is verified, so an interrupted run leaves a safe (unpromotable) replica behind,
never an empty one Sentinel might promote.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from redis_ha import control as controlmod
from redis_ha import diagnose as diag
from redis_ha.actions.cluster import current_primary
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.conn import client, describe_error
from redis_ha.errors import ClusterError, GuardRefused, HAError
from redis_ha.facts import ClusterFacts
from redis_ha.health import Health
from redis_ha.inventory import Endpoint

UNPROMOTABLE = {"replica-priority": "0", "replica-announced": "no"}
IN_SYNC_MAX_LAG_BYTES = 1_000_000
POLL_S = 0.1
BAD_FLAGS = ("s_down", "o_down", "disconnected")


# --- gathering (I/O) ------------------------------------------------------------------------
def _info(ctx: Context, ep: Endpoint, *sections: str) -> dict[str, Any]:
    c = client(ctx.inv, ep, timeout=1.0)
    try:
        out: dict[str, Any] = {}
        for s in sections:
            out.update(c.info(s))
        return out
    except (redis.RedisError, OSError):
        return {}
    finally:
        c.close()


def _obl_hard(ctx: Context, ep: Endpoint) -> int | None:
    """The primary's `client-output-buffer-limit replica` hard limit in bytes."""
    c = client(ctx.inv, ep, timeout=1.0)
    try:
        raw = c.config_get("client-output-buffer-limit").get("client-output-buffer-limit", "")
    except (redis.RedisError, OSError):
        return None
    finally:
        c.close()
    words = str(raw).split()
    for i, w in enumerate(words[:-1]):
        if w in ("slave", "replica"):
            try:
                return int(words[i + 1])
            except ValueError:
                return None
    return None


def evidence(ctx: Context, facts: ClusterFacts, health: Health, node: str) -> diag.Evidence:
    """Best-effort extra evidence: counters, buffer limit, memory and log tails."""
    ev = diag.Evidence()
    ep = ctx.inv.node(node)
    n = facts.node(node)
    if n.up:
        rinfo = _info(ctx, ep, "replication")
        if "master_link_down_since_seconds" in rinfo:
            ev.link_down_s = int(rinfo["master_link_down_since_seconds"])
    ctl = _evidence_control(ctx, ep)
    if ctl is not None:
        ev.replica_log = ctl.log_tail(ep, 300)
    if health.primary and health.primary != node:
        pep = ctx.inv.node(health.primary)
        pinfo = _info(ctx, pep, "stats")
        if "sync_full" in pinfo:
            ev.full_syncs = int(pinfo["sync_full"])
        ev.obl_hard = _obl_hard(ctx, pep)
        pctl = _evidence_control(ctx, pep)
        if pctl is not None:
            ev.mem_available = pctl.mem_available(pep)
            ev.primary_log = pctl.log_tail(pep, 300)
    return ev


def _evidence_control(ctx: Context, ep: Endpoint) -> controlmod.Control | None:
    """The node's control backend for reading logs and memory, or None when it refuses.

    The default `local` backend refuses inventories not marked `lab: true`: the evidence it
    would give is optional, the read-only diagnosis must not fail for it.
    """
    try:
        return controlmod.for_node(ctx.inv, ep)
    except HAError:
        return None


def diagnosis(ctx: Context, node: str, allow_write_outage: bool = False) -> diag.Diagnosis:
    """Fresh facts + evidence -> the pure diagnosis."""
    ctx.inv.node(node)
    f, h = ctx.health()
    return diag.diagnose(
        ctx.inv, f, h, node, evidence(ctx, f, h, node), allow_write_outage=allow_write_outage
    )


def _set(ctx: Context, ep: Endpoint, settings: dict[str, str], *, rewrite: bool = True) -> str:
    """CONFIG SET on a live node, then CONFIG REWRITE so a restart keeps it (best effort)."""
    c = client(ctx.inv, ep, timeout=2.0)
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


# --- diagnosis and guards -------------------------------------------------------------------
@action("replica.diagnose", changes=False)
def diagnose(ctx: Context, node: str, allow_write_outage: bool = False) -> Outcome:
    """Show why the replica needs rebuilding and what the rebuild will do (read-only)."""
    d = diagnosis(ctx, node, allow_write_outage)
    for line in d.findings:
        ctx.log(f"  why:     {line}")
    for line in d.warnings:
        ctx.log(f"  WARNING: {line}")
    for line in d.refusals:
        ctx.log(f"  REFUSED: {line}")
    for i, line in enumerate(d.plan, 1):
        ctx.log(f"  plan {i}: {line}")
    verdict = "rebuild recommended" if d.needs_rebuild else "no reason to rebuild found"
    return Outcome(True, f"{node}: {verdict}", d.to_dict())


@check("replica.safe_to_rebuild")
def safe_to_rebuild(ctx: Context, node: str, allow_write_outage: bool = False) -> Outcome:
    """Not the primary, a primary to copy from, no failover running, writes kept, memory ok."""
    d = diagnosis(ctx, node, allow_write_outage)
    if d.refusals:
        return Outcome(False, "; ".join(d.refusals), d.to_dict())
    if "restore_priority" in ctx.state:  # priority 0 is this run's own doing, not a leftover
        d.warnings = [w for w in d.warnings if "replica-priority 0" not in w]
    extra = ("; " + "; ".join(d.warnings)) if d.warnings else ""
    return Outcome(True, f"{node} may be rebuilt from {d.primary}{extra}", d.to_dict())


@check("replica.needs_rebuild")
def needs_rebuild(ctx: Context, node: str, force: bool = False) -> Outcome:
    """Something is wrong with the replica (or the operator forces a rebuild anyway)."""
    d = diagnosis(ctx, node, allow_write_outage=True)
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
def _describe_unpromotable(ctx: Context, node: str) -> str:
    return f"{node}: CONFIG SET replica-priority 0, replica-announced no (if it is up)"


@action("replica.make_unpromotable", describe=_describe_unpromotable)
def make_unpromotable(ctx: Context, node: str) -> Outcome:
    """Priority 0 and hidden from Sentinel's replica list, so it is never promoted or read."""
    ep = ctx.inv.node(node)
    f, h = ctx.health()
    if h.primary == node:
        raise GuardRefused(f"{node} is the current primary; refusing to touch it")
    n = f.node(node)
    live = n.replica_priority
    restore = live if live else ctx.inv.settings.replica_priority
    ctx.state.setdefault("restore_priority", restore)
    if not n.up:
        return Outcome(
            True, f"{node} is down: it will start with replica-priority 0", {"live": False}
        )
    # No CONFIG REWRITE here: it would persist whatever broke the replica (a wrong masterauth,
    # a bad replicaof) into its config file. The restart passes these settings explicitly.
    note = _set(ctx, ep, UNPROMOTABLE, rewrite=False)
    return Outcome(
        True,
        f"{node}: replica-priority 0, replica-announced no{note}; restore later to {restore}",
        {"live": True, "restore_priority": restore},
    )


@check("replica.unpromotable_seen")
def unpromotable_seen(ctx: Context, node: str) -> Outcome:
    """Every Sentinel has seen the node at priority 0 (or hidden, or down), not a stale 100."""
    ep = ctx.inv.node(node)
    f = ctx.facts()
    stale = []
    for s in f.sentinels:
        if not s.up:
            continue
        for r in s.replicas:
            if _is(ctx, r, ep) and str(r.get("slave-priority")) != "0":
                flags = str(r.get("flags", ""))
                if not any(b in flags for b in BAD_FLAGS):
                    stale.append(s.name)
    if stale:
        return Outcome(False, f"{', '.join(stale)} still see {node} as promotable", {})
    return Outcome(True, f"no Sentinel considers {node} promotable", {})


def _describe_restart(ctx: Context, node: str) -> str:
    try:
        _, h = ctx.health()
        src = h.primary or "the primary"
    except Exception:  # noqa: BLE001 - a description must never fail
        src = "the primary"
    return f"{node}: stop, then start empty as a replica of {src} with replica-priority 0"


@action("replica.restart", describe=_describe_restart)
def restart(ctx: Context, node: str) -> Outcome:
    """Restart the node empty, as a replica of the current primary, unpromotable from its start."""
    ep = ctx.inv.node(node)
    pep = ctx.inv.node(current_primary(ctx)[2].name)
    if pep.name == node:
        raise GuardRefused(f"{node} is the current primary; refusing to restart it")
    ctl = controlmod.for_node(ctx.inv, ep)
    was_running = ctl.is_running(ep)
    ctl.restart(ep, replicaof=pep, overrides=dict(UNPROMOTABLE))
    how = "restarted" if was_running else "started"
    return Outcome(
        True,
        f"{node} {how} ({ctl.backend}) as a replica of {pep.name}, replica-priority 0",
        {"primary": pep.name, "was_running": was_running},
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


@action("replica.wait_sync", changes=False)
def wait_sync(ctx: Context, node: str, max_wait_s: float = 900.0) -> Outcome:
    """Follow the full sync with a progress bar until the link is up and the data loaded."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from redis_ha import ui

    ep = ctx.inv.node(node)
    t0 = time.monotonic()
    deadline = t0 + max_wait_s
    c = client(ctx.inv, ep, timeout=2.0)
    phases: list[str] = []
    last_err = ""
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
                    last_err = ""
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
                if time.monotonic() > deadline:
                    why = f" ({last_err})" if last_err else ""
                    raise ClusterError(
                        f"{node}: full sync not finished after {max_wait_s:.0f} s, "
                        f"last phase {phase}{why}; it stays at replica-priority 0"
                    )
                time.sleep(POLL_S)
    finally:
        c.close()
    took = time.monotonic() - t0
    return Outcome(
        True,
        f"{node}: full sync done in {took:.1f} s ({' -> '.join(phases)})",
        {"seconds": took, "phases": phases},
    )


@check("replica.in_sync")
def in_sync(ctx: Context, node: str, max_lag_bytes: int = IN_SYNC_MAX_LAG_BYTES) -> Outcome:
    """Replica of the current primary, link up, not syncing or loading, offset close to it."""
    ctx.inv.node(node)
    f, h = ctx.health()
    return _in_sync(f, h, node, max_lag_bytes)


def _in_sync(f: ClusterFacts, h: Health, node: str, max_lag_bytes: int) -> Outcome:
    if h.primary is None:
        return Outcome(False, "no usable primary to compare with")
    p, n = f.node(h.primary), f.node(node)
    data = {"primary": p.name, "offset": n.offset, "primary_offset": p.offset}
    if not n.up:
        return Outcome(False, f"{node} is down: {n.error}", data)
    if n.name == p.name or n.role != "replica" or n.replicating_from != p.name:
        return Outcome(False, f"{node} is not a replica of {p.name}", data)
    if not n.link_up:
        return Outcome(False, f"{node}: link to {p.name} is down", data)
    if n.sync_in_progress or n.loading:
        return Outcome(False, f"{node}: still syncing/loading from {p.name}", data)
    lag = max(0, (p.offset or 0) - (n.offset or 0))
    data["lag_bytes"] = lag
    if lag > max_lag_bytes:
        return Outcome(False, f"{node} is {lag} bytes behind {p.name}", data)
    return Outcome(True, f"{node} is in sync with {p.name} ({lag} bytes behind)", data)


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
def keys_match(ctx: Context, node: str, attempts: int = 20) -> Outcome:
    """The replica's DBSIZE equals the primary's at the same replication offset.

    Both are read atomically with their offsets; when the replica reaches exactly the primary's
    offset the counts must be equal. Under heavy traffic the replica may step over that offset:
    after `attempts` tries the counts are compared within what the write rate changes meanwhile.
    """
    ep = ctx.inv.node(node)
    pep = ctx.inv.node(current_primary(ctx)[2].name)
    pc, rc = client(ctx.inv, pep, timeout=2.0), client(ctx.inv, ep, timeout=2.0)
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


def _describe_restore(ctx: Context, node: str, force: bool = False) -> str:
    prio = ctx.state.get("restore_priority", ctx.inv.settings.replica_priority)
    return f"{node}: CONFIG SET replica-priority {prio}, replica-announced yes (only if in sync)"


@action("replica.restore_priority", describe=_describe_restore)
def restore_priority(ctx: Context, node: str, force: bool = False) -> Outcome:
    """Make the replica promotable and readable again, but only once it holds a full copy."""
    ep = ctx.inv.node(node)
    prio = int(ctx.state.get("restore_priority") or ctx.inv.settings.replica_priority)
    f, h = ctx.health()
    n = f.node(node)
    if not n.up:
        return Outcome(False, f"{node} is down; it will need the rebuild again", {})
    if h.primary == node:
        return Outcome(True, f"{node} is the primary now; its priority is irrelevant", {})
    ok = _in_sync(f, h, node, IN_SYNC_MAX_LAG_BYTES)
    if not ok.ok and not force:
        return Outcome(
            False,
            f"kept {node} at replica-priority 0 because it is not a complete copy "
            f"({ok.message}); finish the rebuild, or restore by hand once it is in sync",
            {"kept": True},
        )
    note = _set(ctx, ep, {"replica-priority": str(prio), "replica-announced": "yes"})
    return Outcome(True, f"{node}: replica-priority {prio}, replica-announced yes{note}", {})


def _is(ctx: Context, r: dict[str, Any], ep: Endpoint) -> bool:
    node = ctx.inv.node_by_address(str(r.get("ip", "")), str(r.get("port", "0")))
    return node is not None and node.name == ep.name


@check("replica.sentinels_list_healthy")
def sentinels_list_healthy(ctx: Context, node: str) -> Outcome:
    """Every Sentinel lists the node as a replica, link ok, not down, at its restored priority."""
    ep = ctx.inv.node(node)
    prio = str(ctx.state.get("restore_priority") or ctx.inv.settings.replica_priority)
    f = ctx.facts()
    bad = []
    for s in f.sentinels:
        if not s.up:
            bad.append(f"{s.name} is down")
            continue
        r = next((r for r in s.replicas if _is(ctx, r, ep)), None)
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
    return Outcome(True, f"all {len(f.sentinels)} Sentinels list {node} as a healthy replica", {})
