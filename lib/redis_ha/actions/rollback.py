"""The 30-minute rollback (and its undo): move the app between Sentinel discovery and the single
legacy instance, keeping sessions, never leaving the app on a configuration that does not work.

Every step that changes the app saves what it replaced first, and a failed redeploy or a failed
validation puts the saved configuration back and redeploys it before reporting the failure: a
half-done rollback is worse than none (each such plan shows that restore as an operation). The
Sentinel cluster itself is never touched; it stays up for debugging (sprint plan, Rollback Plan
step 4). The key copier is `redis_ha.keycopy`, the report `redis_ha.rollback_report`.
"""

from __future__ import annotations

import dataclasses
import shlex
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import redis

from redis_ha import appconfig, cancel, keycopy, rollback_report
from redis_ha import client as appclient
from redis_ha import journal as journalmod
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.appconfig import SENTINEL, SINGLE, AppConfigError
from redis_ha.conn import describe_error
from redis_ha.errors import ClusterError, HAError, InventoryError
from redis_ha.facts import node_facts
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.plan import Op, Plan, noop, reads
from redis_ha.view import View

PROBE_PREFIX = "session:redis-ha-rollback-probe:"
PROBE_TTL_MS = 60_000
TO_SINGLE, TO_CLUSTER = "to_single", "to_cluster"


# --- helpers --------------------------------------------------------------------------------------


def _other(mode: str) -> str:
    return SENTINEL if mode == SINGLE else SINGLE


def _check_mode(mode: str) -> None:
    if mode not in appconfig.MODES:
        raise InventoryError(f"mode must be one of {', '.join(appconfig.MODES)}, got {mode!r}")


def _single(inv: Inventory) -> Endpoint:
    if inv.single is None:
        raise InventoryError(f"{inv.path}: no 'single' instance in the inventory to roll back to")
    return inv.single


def _backend(inv: Inventory, yes: bool = False) -> appconfig.Backend:
    return appconfig.backend_for(inv, yes=yes)


def _backup_dir(ctx: Context) -> Path:
    """Backends without a file of their own save the replaced values beside the run's journal."""
    return ctx.journal.path.parent if ctx.journal else journalmod.journal_dir()


def _who() -> str:
    return f"{journalmod.operator()}@{socket.gethostname()}"


# --- preflight checks -----------------------------------------------------------------------------


@check("rollback.single_ready")
def single_ready(view: View, min_free_mb: int = 64, no_warm: bool = False) -> Outcome:
    """The single instance answers with the cluster's password and has memory headroom.

    Reads the single instance itself (one INFO round trip): the cluster's facts do not hold it.
    Unless `no_warm`, the headroom must also hold what the warm-up copies (the Sentinel
    primary's used_memory, from the view).
    """
    ep = _single(view.inv)
    f = node_facts(view.inv, ep, timeout=2.0)
    if not f.up:
        return Outcome(False, f"single instance {ep.name} ({ep.address}): {f.error}", {})
    if f.role != "master":
        return Outcome(
            False, f"single instance {ep.name} is a {f.role}, not a standalone primary", {}
        )
    limit = f.maxmemory or f.total_memory or 0
    used = f.used_memory or 0
    need = min_free_mb * 1024 * 1024
    if not no_warm:
        need += _sessions_bytes(view)
    data = {"used_memory": used, "limit": limit, "needed": need}
    if limit and limit - used < need:
        return Outcome(
            False,
            f"single instance {ep.name} has {(limit - used) >> 20} MB free, "
            f"{need >> 20} MB needed (sessions to copy + {min_free_mb} MB headroom)",
            data,
        )
    free = f"{(limit - used) >> 20} MB free" if limit else "no memory limit"
    return Outcome(True, f"single instance {ep.name} is up, auth OK, {free}", data)


def _sessions_bytes(view: View) -> int:
    """Memory the Sentinel primary uses for data (what a warm-up would copy), 0 if unknown."""
    if view.health.primary is None:
        return 0
    return view.facts.node(view.health.primary).used_memory or 0


@check("app.config_readable")
def config_readable(view: View, unattended: bool = False) -> Outcome:
    """The app config backend can be reached (file readable, CLI present, operator present).

    Reads the app's configuration (not a cluster fact). `unattended` (the operator's --yes): a
    backend that needs a person (manual) refuses here, before anything changes.
    """
    b = _backend(view.inv, unattended)
    refuse = getattr(b, "refuse_unattended", None)
    try:
        if refuse:
            refuse()
        values = b.read()
    except HAError as e:
        return Outcome(False, str(e), {})
    mode = appconfig.mode_of(values) if values is not None else "unknown"
    return Outcome(True, f"{b.where()} is readable (app mode: {mode})", {"mode": mode})


@check("app.on_mode")
def on_mode(view: View, mode: str) -> Outcome:
    """The app's configuration selects `mode` (single or sentinel); unknown counts as yes.

    Reads the app's configuration through its backend (not a cluster fact).
    """
    _check_mode(mode)
    b = _backend(view.inv)
    try:
        values = b.read()
    except HAError as e:
        return Outcome(False, str(e), {})
    if values is None:
        return Outcome(True, f"{b.where()}: mode cannot be read; assuming {mode}", {})
    now = appconfig.mode_of(values)
    if now == mode:
        return Outcome(True, f"the app is configured for {mode} mode ({b.where()})", {})
    return Outcome(False, f"the app is configured for {now} mode, not {mode} ({b.where()})", {})


@check("rollback.sentinel_running")
def sentinel_running(view: View) -> Outcome:
    """The Sentinel cluster answers and a Sentinel majority names a primary."""
    f, h = view.facts, view.health
    up = sum(1 for s in f.sentinels if s.up)
    data = {"primary": h.primary, "level": h.level, "sentinels_up": up}
    if h.primary is None:
        why = "; ".join(h.problems[:2]) or "no Sentinel majority names a primary"
        return Outcome(False, f"the Sentinel cluster has no usable primary: {why}", data)
    return Outcome(
        True, f"Sentinel cluster {h.level}: primary {h.primary}, {up} Sentinels up", data
    )


# --- preflight action: remember where we started --------------------------------------------------


def plan_begin(view: View, to: str) -> Plan:
    """Record who starts the switch, to which mode, and the Sentinel primary before it."""
    _check_mode(to)
    who, primary = _who(), view.health.primary
    op = Op("run", f"record the switch to {to} mode", f"operator {who}, primary {primary}")
    record = {"rollback_to": to, "operator": who, "sentinel_primary_before": primary}
    return Plan("rollback.begin", [op], record=record, changes=False)


@action("rollback.begin", plan=plan_begin, changes=False)
def begin(ctx: Context, plan: Plan) -> Outcome:
    """Record who starts the switch, when, the app mode and the Sentinel primary before it."""
    r = plan.record
    primary = r["sentinel_primary_before"]
    return Outcome(
        True,
        f"switching the app to {r['rollback_to']} mode; Sentinel primary is {primary or 'unknown'}",
        {"operator": r["operator"], "sentinel_primary": primary},
    )


# --- warm-up --------------------------------------------------------------------------------------


def plan_warm(
    view: View,
    no_warm: bool = False,
    max_keys: int = 200_000,
    max_seconds: float = 300,
    batch: int = 500,
    match: str = "*",
    direction: str = TO_SINGLE,
) -> Plan:
    """Copy live sessions to where the app is going (single instance or Sentinel primary).

    For the way back (`to_cluster`) it pings the single instance: the cluster's facts do not
    hold it.
    """
    name = "rollback.warm_sessions"
    if direction not in (TO_SINGLE, TO_CLUSTER):
        raise InventoryError(f"direction must be {TO_SINGLE} or {TO_CLUSTER}, got {direction!r}")
    if no_warm:
        return noop(name, "warm-up skipped (--no-warm): users will have to log in again")
    single = _single(view.inv)
    if view.health.primary is None:
        # Nothing to copy from (or to): not a reason to stop a switch away from an ailing cluster.
        return noop(name, "warm-up skipped: the Sentinel cluster has no usable primary")
    primary = view.inv.node(view.health.primary)
    src, dst = (primary, single) if direction == TO_SINGLE else (single, primary)
    if direction == TO_CLUSTER and not node_facts(view.inv, single, timeout=2.0).up:
        return noop(name, f"warm-up skipped: {single.name} is unreachable, nothing to copy")
    ops = [
        Op(src.name, f"SCAN MATCH {match}, PTTL + DUMP", f"batches of {batch}"),
        Op(
            dst.name,
            f"RESTORE ... REPLACE up to {max_keys} keys from {src.name}, keeping TTLs",
            f"stops after {max_seconds:g} s",
        ),
    ]
    params = {
        "src": src.name,
        "dst": dst.name,
        "max_keys": max_keys,
        "max_seconds": max_seconds,
        "batch": batch,
        "match": match,
    }
    return Plan(name, ops, params=params)


def _endpoint(inv: Inventory, name: str) -> Endpoint:
    single = _single(inv)
    return single if name == single.name else inv.node(name)


@action("rollback.warm_sessions", plan=plan_warm)
def warm_sessions(ctx: Context, plan: Plan) -> Outcome:
    """Copy live sessions to where the app is going (single instance or Sentinel primary)."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "", {})
    p = plan.params
    src, dst = _endpoint(ctx.inv, p["src"]), _endpoint(ctx.inv, p["dst"])
    try:
        res = keycopy.copy_keys(
            ctx.inv,
            src,
            dst,
            max_keys=p["max_keys"],
            max_seconds=p["max_seconds"],
            batch=p["batch"],
            match=p["match"],
            skip=(PROBE_PREFIX.encode(),),
            log=ctx.log,
        )
    except ClusterError as e:
        raise ClusterError(f"warm-up: {e}") from None
    ctx.state["warm_copied"] = res["copied"]
    msg = f"copied {res['copied']} keys from {src.name} to {dst.name} in {res['seconds']:.1f} s"
    if res["stopped"]:
        msg += f" (stopped early: {res['stopped']})"
    if res["failed"]:
        msg += f"; {res['failed']} keys NOT copied (first error: {res['first_error']})"
    return Outcome(True, msg, res)


# --- the app's configuration ----------------------------------------------------------------------


def _redeploy_ops(inv: Inventory, b: appconfig.Backend) -> list[Op]:
    """What each backend's redeploy runs, as the operator would run it (secrets masked)."""
    if b.name == "railway":
        binary, args = getattr(b, "binary", "railway"), b.redeploy_args()  # type: ignore[attr-defined]
        return [Op(b.where(), shlex.join([binary, *args]), "the app restarts once, now")]
    if b.name == "manual":
        return [Op("operator", "redeploy the app by hand, then confirm", "asked on the terminal")]
    ops = [Op(b.where(), "parse the file", "what the app will read must still parse")]
    restart = getattr(b, "restart_cmd", None)
    if restart:
        ops.append(Op("app", f"run {journalmod.redact(restart, inv.secrets())}", "app.restart_cmd"))
    else:
        ops[0] = Op(b.where(), "parse the file", "the app re-reads it on change (no restart_cmd)")
    return ops


def _restore_ops(b: appconfig.Backend, backup: str) -> list[Op]:
    """What putting `backup` back writes: the whole file, or the saved variables by name."""
    if b.name == "envfile":
        return [Op(b.where(), f"replace it with {backup}", "the file as it was before this run")]
    changes = appconfig.read_backup(Path(backup))
    said = ", ".join(
        f"unset {k}" if v is None else f"set {k} (saved value)" for k, v in changes.items()
    )
    return [Op(b.where(), said or "nothing saved to put back", f"from {backup}")]


def _on_failure_op(b: appconfig.Backend, when: str) -> Op:
    return Op(
        b.where(), f"{when}: put the saved configuration back and redeploy it", "never half-done"
    )


def plan_set_mode(view: View, mode: str) -> Plan:
    """Point the app's configuration at the single instance or at Sentinel discovery."""
    _check_mode(mode)
    b = _backend(view.inv)
    changes = appconfig.target_vars(view.inv, mode)
    previous = appconfig.target_vars(view.inv, _other(mode))
    ops = [Op(b.where(), "save the variables it replaces", "for app.restore_config")]
    ops += [Op(b.where(), said) for said in appconfig.shown(changes, view.inv.secrets())]
    return Plan(
        "app.set_mode", ops, params={"mode": mode, "changes": changes, "previous": previous}
    )


@action("app.set_mode", plan=plan_set_mode)
def set_mode(ctx: Context, plan: Plan) -> Outcome:
    """Point the app's configuration at the single instance or at Sentinel discovery."""
    b = _backend(ctx.inv, ctx.yes)
    changes = plan.params["changes"]
    # Keyed by the run: resumed after a kill between the change and its journal record, the
    # step finds the backup it made of the config before the run, not the text it wrote.
    saved = b.apply(
        changes, _backup_dir(ctx), previous=plan.params["previous"], key=ctx.run_id or None
    )
    ctx.state["app_backup"] = str(saved)
    ctx.state["app_restored"] = False
    said = ", ".join(f"unset {k}" if v is None else f"set {k}" for k, v in changes.items())
    return Outcome(
        True, f"{b.where()}: {said} (previous config saved to {saved})", {"backup": str(saved)}
    )


def plan_restore(view: View, app_backup: str = "", app_restored: bool = False) -> Plan:
    """Put the app's previous configuration back from the saved copy and redeploy it."""
    name = "app.restore_config"
    if not app_backup:
        return noop(name, "nothing to restore: the app configuration was not changed")
    if app_restored:
        return noop(name, f"the previous app configuration was already restored from {app_backup}")
    b = _backend(view.inv)
    ops = _restore_ops(b, app_backup) + _redeploy_ops(view.inv, b)
    return Plan(name, ops, params={"backup": app_backup})


@action("app.restore_config", plan=plan_restore)
def restore_config(ctx: Context, plan: Plan) -> Outcome:
    """Put the app's previous configuration back from the saved copy and redeploy it."""
    if plan.is_noop:
        return Outcome(True, plan.noop or "", {})
    return Outcome(True, _restore(ctx, plan.params["backup"]), {})


def _restore(ctx: Context, saved: str) -> str:
    """Put `saved` back and redeploy; returns what happened (state: app_restored)."""
    b = _backend(ctx.inv, ctx.yes)
    b.restore(Path(saved))
    ctx.state["app_restored"] = True
    try:
        how = b.redeploy()
    except HAError as e:
        return f"previous app configuration restored from {saved}, but its redeploy failed: {e}"
    return f"previous app configuration restored from {saved} and redeployed ({how})"


def _restore_safely(ctx: Context) -> str:
    """The restore a failed redeploy or validation owes (once), said plainly even if it fails."""
    saved = ctx.state.get("app_backup")
    if not saved:
        return "nothing to restore: the app configuration was not changed"
    if ctx.state.get("app_restored"):
        return f"the previous app configuration was already restored from {saved}"
    try:
        return _restore(ctx, saved)
    except HAError as e:
        return f"putting the previous configuration back FAILED too ({e}): restore {saved} by hand"


def plan_redeploy(view: View) -> Plan:
    """Make the app pick up its new configuration; on failure put the old one back."""
    b = _backend(view.inv)
    ops = [*_redeploy_ops(view.inv, b), _on_failure_op(b, "if the redeploy fails")]
    return Plan("app.redeploy", ops)


@action("app.redeploy", plan=plan_redeploy)
def redeploy(ctx: Context, plan: Plan) -> Outcome:
    """Make the app pick up its new configuration; on failure put the old one back."""
    try:
        how = _backend(ctx.inv, ctx.yes).redeploy()
    except HAError as e:
        raise AppConfigError(f"redeploy failed ({e}); {_restore_safely(ctx)}") from None
    return Outcome(True, how, {})


# --- validation -----------------------------------------------------------------------------------


def _probe_client(inv: Inventory, mode: str, values: dict[str, str] | None) -> tuple[Any, str]:
    """A client built exactly as the app builds it (redis_ha.client) from its configuration.

    When the configuration cannot be read (manual backend) or holds platform references this
    tool cannot resolve (Railway `${{...}}`), the inventory's view of `mode` stands in for it.
    """
    keys = (
        *appconfig.target_vars(inv, mode),
        appclient.ENV_PASSWORD_FILE,
        appclient.ENV_PASSWORD,
    )
    env = {k: v for k, v in (values or {}).items() if k in keys}
    if not env or any("${{" in v for v in env.values()):
        env = {k: v for k, v in appconfig.target_vars(inv, mode).items() if v is not None}
        if "${{" in env.get(appconfig.VAR_URL, ""):
            env[appconfig.VAR_URL] = appconfig.single_url(dataclasses.replace(inv, app={}))
        pw = inv.password()
        if pw:
            env[appclient.ENV_PASSWORD] = pw
    elif not env.get(appclient.ENV_PASSWORD_FILE) and not env.get(appclient.ENV_PASSWORD):
        pw = inv.password()  # the app gets it from a secret store we cannot see
        if pw:
            env[appclient.ENV_PASSWORD] = pw
    cfg = appclient.config_from_env(env)
    return appclient.from_config(cfg, retry_budget_s=1.0), cfg.describe()


def probe_sessions(inv: Inventory, mode: str) -> Outcome:
    """Write, read back and delete a probe session the way the app now connects; then the
    app's health URL, if the inventory names one."""
    _check_mode(mode)
    b = _backend(inv)
    try:
        values = b.read()
        c, where = _probe_client(inv, mode, values)
    except HAError as e:
        return Outcome(False, str(e), {})
    if values is not None and appconfig.mode_of(values) != mode:
        return Outcome(False, f"{b.where()} does not select {mode} mode", {})
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    value = f"probe {time.time():.3f}"
    try:
        c.set(key, value, px=PROBE_TTL_MS)
        got = c.get(key)
        c.delete(key)
    except (redis.RedisError, OSError) as e:
        return Outcome(False, f"probe session via {where} failed: {describe_error(e)}", {})
    finally:
        appclient.close(c)
    if (got.decode() if isinstance(got, bytes) else got) != value:
        return Outcome(False, f"probe session via {where} read back {got!r}", {})
    msg = f"probe session written and read back via {where}"
    url = inv.app.get("health_url")
    if url:
        ok, said = app_health(str(url))
        if not ok:
            return Outcome(False, f"{msg}, but the app health check failed: {said}", {})
        msg += f"; app health {said}"
    return Outcome(True, msg, {"via": where})


@check("rollback.sessions_ok")
def sessions_ok(view: View, mode: str) -> Outcome:
    """A probe session written the way the app now connects reads back (and the app is healthy).

    Writes a probe session (60 s TTL) and reads the app's health URL: not cluster facts. A dry
    run writes nothing.
    """
    if view.dry_run:
        return Outcome(True, f"would write a probe session in {mode} mode (skipped: dry run)", {})
    return probe_sessions(view.inv, mode)


def app_health(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """GET the app's health URL: (2xx?, what was seen)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - operator's URL
            return 200 <= r.status < 300, f"{url} -> {r.status}"
    except urllib.error.HTTPError as e:
        return False, f"{url} -> {e.code}"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return False, f"{url} unreachable ({reason})"


def plan_validate(view: View, mode: str, wait_s: float = 30) -> Plan:
    """Check sessions end to end in `mode` until OK or `wait_s`; if it never works, restore."""
    _check_mode(mode)
    inv = view.inv
    target = _single(inv).name if mode == SINGLE else f"Sentinel master {inv.master_name}"
    ops = [
        Op(
            target,
            "SET, GET, DEL a probe session through a client built as the app builds it",
            f"retried for up to {wait_s:g} s",
        )
    ]
    url = inv.app.get("health_url")
    if url:
        ops.append(Op("app", f"GET {url}", "must answer 2xx"))
    ops.append(_on_failure_op(_backend(inv), "if it never passes"))
    return Plan("rollback.validate", ops, params={"mode": mode, "wait_s": wait_s})


@action("rollback.validate", plan=plan_validate)
def validate(ctx: Context, plan: Plan) -> Outcome:
    """Check sessions end to end until OK or the plan's wait; if it never works, restore."""
    mode, wait_s = plan.params["mode"], plan.params["wait_s"]
    deadline = time.monotonic() + wait_s
    while True:
        out = probe_sessions(ctx.inv, mode)
        if out.ok or time.monotonic() > deadline:
            break
        cancel.sleep(0.5)
    if not out.ok:
        raise AppConfigError(f"validation failed ({out.message}); {_restore_safely(ctx)}")
    copied = ctx.state.get("warm_copied")
    if copied:
        out.message += f"; {copied} warmed sessions in place"
    return out


def plan_sentinel_intact(view: View) -> Plan:
    """Say whether the Sentinel cluster is still running and untouched (never fails the run)."""
    return reads("rollback.sentinel_intact", "sentinels", "SENTINEL MASTER on every Sentinel")


@action("rollback.sentinel_intact", plan=plan_sentinel_intact, changes=False)
def sentinel_intact(ctx: Context, plan: Plan) -> Outcome:
    """Say whether the Sentinel cluster is still running and untouched (never fails the run)."""
    before = ctx.state.get("sentinel_primary_before")
    try:
        out = sentinel_running(ctx.view())
    except HAError as e:
        out = Outcome(False, str(e), {})
    now = out.data.get("primary")
    if out.ok and before and now != before:
        out.message += f" (it was {before} when the switch began: a failover happened meanwhile)"
    if not out.ok:
        out.message = f"WARNING: {out.message}; the app switch itself is done"
    ctx.state["sentinel_after"] = out.message
    return Outcome(True, out.message, out.data)


# --- the report -----------------------------------------------------------------------------------


def plan_report(view: View) -> Plan:
    """Write the Markdown report beside the run's journal."""
    op = Op("journal", "write <run id>-report.md beside this run's journal", "from its records")
    return Plan("rollback.write_report", [op], changes=False)


@action("rollback.write_report", plan=plan_report, changes=False)
def write_report(ctx: Context, plan: Plan) -> Outcome:
    """Write the Markdown report beside the run's journal, from that journal's records."""
    if ctx.journal is None:
        raise HAError("rollback.write_report needs the run's journal (run it through a playbook)")
    records = journalmod.read(ctx.journal.path)
    to = ctx.state.get("rollback_to", SINGLE)
    budget = ctx.budget_s or 0.0
    start = next((r for r in records if r["event"] == "start"), None)
    started = ctx.started_at or (float(start["ts"]) if start else time.time())
    facts = rollback_report.Facts(
        inventory=str(ctx.inv.path),
        to=to,
        where=_backend(ctx.inv).where(),
        changes=appconfig.shown(appconfig.target_vars(ctx.inv, to), ctx.inv.secrets()),
        budget_s=budget,
        started=started,
        now=time.time(),
    )
    text = rollback_report.render(records, dict(ctx.state), facts, ctx.inv.secrets())
    path = ctx.journal.path.with_name(f"{ctx.run_id or ctx.journal.run_id}-report.md")
    path.write_text(text)
    ctx.state["report"] = str(path)
    total = facts.now - started
    return Outcome(
        True,
        f"report written to {path} (total {total:.0f} s of the {budget:.0f} s budget)",
        {"path": str(path)},
    )
