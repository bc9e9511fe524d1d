"""The 30-minute rollback (and its undo): move the app between Sentinel discovery and the single
legacy instance, keeping sessions, never leaving the app on a configuration that does not work.

Every step that changes the app saves what it replaced first, and a failed redeploy or a failed
validation puts the saved configuration back and redeploys it before reporting the failure: a
half-done rollback is worse than none. The Sentinel cluster itself is never touched; it stays up
for debugging (sprint plan, Rollback Plan step 4).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import redis

from redis_ha import appconfig, conn
from redis_ha import client as appclient
from redis_ha import journal as journalmod
from redis_ha.actions.registry import Context, Outcome, action, check
from redis_ha.appconfig import SENTINEL, SINGLE, AppConfigError
from redis_ha.conn import describe_error
from redis_ha.errors import ClusterError, HAError, InventoryError
from redis_ha.facts import node_facts
from redis_ha.inventory import Endpoint, Inventory

PROBE_PREFIX = "session:redis-ha-rollback-probe:"
PROBE_TTL_MS = 60_000
# The tool's own keys (cluster lock, probes) stay where they are: a copied lock would be stale.
TOOL_PREFIXES = (b"redis-ha-runbooks:", PROBE_PREFIX.encode())
MIN_FREE_BYTES = 64 * 1024 * 1024


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


def _binary_client(inv: Inventory, ep: Endpoint, timeout: float = 5.0) -> redis.Redis:
    """A client returning bytes (DUMP payloads are binary)."""
    return conn.client(inv, ep, timeout=timeout, binary=True)


def journal_dir(ctx: Context) -> Path:
    """Where the run's journal lives (the report and private backups go beside it)."""
    raw = ctx.state.get("journal_dir")
    return Path(raw).resolve() if raw else journalmod.journal_dir().resolve()


def _backend(ctx: Context) -> appconfig.Backend:
    return appconfig.backend_for(ctx.inv, yes=ctx.yes)


def _event(ctx: Context, what: str, **data: Any) -> None:
    """One line in the rollback's own timeline (ctx.state, hence journaled and resumable)."""
    ctx.state.setdefault("rollback_events", []).append(
        {"at": time.time(), "what": what, **{k: v for k, v in data.items() if v not in (None, "")}}
    )


# --- preflight checks -----------------------------------------------------------------------------


@check("rollback.single_ready")
def single_ready(ctx: Context, min_free_mb: int = 64) -> Outcome:
    """The single instance answers with the cluster's password and has memory headroom."""
    ep = _single(ctx.inv)
    f = node_facts(ctx.inv, ep, timeout=2.0)
    if not f.up:
        return Outcome(False, f"single instance {ep.name} ({ep.address}): {f.error}", {})
    if f.role != "master":
        return Outcome(
            False, f"single instance {ep.name} is a {f.role}, not a standalone primary", {}
        )
    limit = f.maxmemory or f.total_memory or 0
    used = f.used_memory or 0
    need = min_free_mb * 1024 * 1024
    warm = not ctx.params.get("no_warm")
    if warm:
        need += _sessions_bytes(ctx)
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


def _sessions_bytes(ctx: Context) -> int:
    """Memory the Sentinel primary uses for data (what a warm-up would copy), 0 if unknown."""
    try:
        f, h = ctx.health()
    except HAError:
        return 0
    if h.primary is None:
        return 0
    return f.node(h.primary).used_memory or 0


@check("app.config_readable")
def config_readable(ctx: Context) -> Outcome:
    """The app config backend can be reached (file readable, CLI present, operator present)."""
    b = _backend(ctx)
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
def on_mode(ctx: Context, mode: str) -> Outcome:
    """The app's configuration selects `mode` (single or sentinel); unknown counts as yes."""
    _check_mode(mode)
    b = _backend(ctx)
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
def sentinel_running(ctx: Context) -> Outcome:
    """The Sentinel cluster answers and a Sentinel majority names a primary."""
    f, h = ctx.health()
    up = sum(1 for s in f.sentinels if s.up)
    data = {"primary": h.primary, "level": h.level, "sentinels_up": up}
    if h.primary is None:
        why = "; ".join(h.problems[:2]) or "no Sentinel majority names a primary"
        return Outcome(False, f"the Sentinel cluster has no usable primary: {why}", data)
    return Outcome(
        True, f"Sentinel cluster {h.level}: primary {h.primary}, {up} Sentinels up", data
    )


# --- preflight action: remember where we started --------------------------------------------------


@action("rollback.begin", changes=False)
def begin(ctx: Context, to: str) -> Outcome:
    """Record who starts the switch, when, the app mode and the Sentinel primary before it."""
    _check_mode(to)
    try:
        _, h = ctx.health()
        primary = h.primary
    except HAError:
        primary = None
    ctx.state.setdefault("rollback_started", time.time())
    ctx.state["rollback_to"] = to
    ctx.state["operator"] = _who()
    ctx.state["sentinel_primary_before"] = primary
    _event(ctx, f"start: switch the app to {to} mode", operator=ctx.state["operator"])
    return Outcome(
        True,
        f"switching the app to {to} mode; Sentinel primary is {primary or 'unknown'}",
        {"operator": ctx.state["operator"], "sentinel_primary": primary},
    )


def _who() -> str:
    return f"{journalmod.operator()}@{socket.gethostname()}"


# --- warm-up --------------------------------------------------------------------------------------


TO_SINGLE, TO_CLUSTER = "to_single", "to_cluster"


def _describe_warm(
    ctx: Context,
    max_keys: int = 200_000,
    max_seconds: float = 300,
    direction: str = TO_SINGLE,
    **_: Any,
) -> str:
    if ctx.params.get("no_warm"):
        return "skip the warm-up (--no-warm)"
    ep = _single(ctx.inv)
    single = f"{ep.name} ({ep.address})"
    src, dst = ("the Sentinel primary", single)
    if direction == TO_CLUSTER:
        src, dst = single, "the Sentinel primary"
    return (
        f"copy up to {max_keys} keys (at most {max_seconds:.0f} s) from {src} to {dst} "
        "with DUMP/RESTORE REPLACE, keeping TTLs"
    )


@action("rollback.warm_sessions", describe=_describe_warm)
def warm_sessions(
    ctx: Context,
    max_keys: int = 200_000,
    max_seconds: float = 300,
    batch: int = 500,
    match: str = "*",
    direction: str = TO_SINGLE,
) -> Outcome:
    """Copy live sessions to where the app is going (single instance or Sentinel primary)."""
    if direction not in (TO_SINGLE, TO_CLUSTER):
        raise InventoryError(f"direction must be {TO_SINGLE} or {TO_CLUSTER}, got {direction!r}")
    if ctx.params.get("no_warm"):
        return Outcome(True, "warm-up skipped (--no-warm): users will have to log in again", {})
    single = _single(ctx.inv)
    _, h = ctx.health()
    if h.primary is None:
        # Nothing to copy from (or to): not a reason to stop a switch away from an ailing cluster.
        return Outcome(True, "warm-up skipped: the Sentinel cluster has no usable primary", {})
    primary = ctx.inv.node(h.primary)
    src, dst = (primary, single) if direction == TO_SINGLE else (single, primary)
    if direction == TO_CLUSTER and not node_facts(ctx.inv, single, timeout=2.0).up:
        return Outcome(True, f"warm-up skipped: {single.name} is unreachable, nothing to copy", {})
    res = copy_keys(
        ctx.inv,
        src,
        dst,
        max_keys=max_keys,
        max_seconds=max_seconds,
        batch=batch,
        match=match,
        log=ctx.log,
    )
    _event(ctx, f"warm-up {src.name} -> {dst.name}", copied=res["copied"], stopped=res["stopped"])
    ctx.state["warm_copied"] = res["copied"]
    msg = f"copied {res['copied']} keys from {src.name} to {dst.name} in {res['seconds']:.1f} s"
    if res["stopped"]:
        msg += f" (stopped early: {res['stopped']})"
    if res["failed"]:
        msg += f"; {res['failed']} keys NOT copied (first error: {res['first_error']})"
    return Outcome(True, msg, res)


def _as_bytes(k: bytes | str) -> bytes:
    return k if isinstance(k, bytes) else k.encode()


def copy_keys(
    inv: Inventory,
    src: Endpoint,
    dst: Endpoint,
    *,
    max_keys: int,
    max_seconds: float,
    batch: int = 500,
    match: str = "*",
    log: Any = print,
) -> dict[str, Any]:
    """SCAN the source, pipelined PTTL+DUMP there, pipelined RESTORE ... REPLACE on the target.

    Bounded by `max_keys` and `max_seconds` so a huge keyspace cannot eat the rollback's budget;
    keys that expire between DUMP and RESTORE are skipped, not errors.
    """
    t0 = time.monotonic()
    deadline = t0 + max_seconds
    a, b = _binary_client(inv, src), _binary_client(inv, dst)
    copied = skipped = failed = 0
    stopped = first_error = ""
    last_report = t0
    try:
        cursor = 0
        while True:
            cursor, keys = a.scan(cursor=cursor, match=match, count=batch)
            keys = [k for k in keys if not _as_bytes(k).startswith(TOOL_PREFIXES)]
            keys = keys[: max(0, max_keys - copied)]
            if keys:
                p = a.pipeline(transaction=False)
                for k in keys:
                    p.pttl(k)
                    p.dump(k)
                got = p.execute()
                w = b.pipeline(transaction=False)
                n = 0
                for i, k in enumerate(keys):
                    ttl, payload = got[2 * i], got[2 * i + 1]
                    if payload is None or ttl == -2:
                        skipped += 1
                        continue
                    w.restore(k, max(int(ttl), 0), payload, replace=True)
                    n += 1
                for r in w.execute(raise_on_error=False):
                    if isinstance(r, Exception):
                        failed += 1
                        first_error = first_error or str(r).splitlines()[0][:200]
                        n -= 1
                copied += n
            now = time.monotonic()
            if now - last_report >= 1.0:
                log(f"  warm-up: {copied} keys copied ({now - t0:.0f} s)")
                last_report = now
            if cursor == 0:
                break
            if copied >= max_keys:
                stopped = f"max_keys {max_keys} reached"
                break
            if now > deadline:
                stopped = f"max_seconds {max_seconds:.0f} reached"
                break
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
        raise ClusterError(f"warm-up stopped after {copied} keys: {describe_error(e)}") from None
    finally:
        a.close()
        b.close()
    return {
        "copied": copied,
        "skipped": skipped,
        "failed": failed,
        "first_error": first_error,
        "stopped": stopped,
        "seconds": round(time.monotonic() - t0, 3),
    }


# --- the app's configuration ----------------------------------------------------------------------


def _describe_set_mode(ctx: Context, mode: str) -> str:
    changes = appconfig.target_vars(ctx.inv, mode)
    said = ", ".join(f"unset {k}" if v is None else f"{k}={v}" for k, v in changes.items())
    return f"{_backend(ctx).where()}: {said}"


@action("app.set_mode", describe=_describe_set_mode)
def set_mode(ctx: Context, mode: str) -> Outcome:
    """Point the app's configuration at the single instance or at Sentinel discovery."""
    _check_mode(mode)
    b = _backend(ctx)
    changes = appconfig.target_vars(ctx.inv, mode)
    previous = appconfig.target_vars(ctx.inv, _other(mode))
    saved = b.apply(changes, journal_dir(ctx), previous=previous)
    ctx.state["app_backup"] = str(saved)
    ctx.state["app_restored"] = False
    said = ", ".join(f"unset {k}" if v is None else f"set {k}" for k, v in changes.items())
    _event(ctx, f"app config -> {mode} mode", where=b.where(), backup=str(saved))
    return Outcome(
        True, f"{b.where()}: {said} (previous config saved to {saved})", {"backup": str(saved)}
    )


@action("app.restore_config")
def restore_config(ctx: Context) -> Outcome:
    """Put the app's previous configuration back from the saved copy and redeploy it."""
    return Outcome(True, _restore(ctx), {})


def _restore(ctx: Context) -> str:
    """Restore the saved configuration once (idempotent) and redeploy; returns what happened."""
    saved = ctx.state.get("app_backup")
    if not saved:
        return "nothing to restore: the app configuration was not changed"
    if ctx.state.get("app_restored"):
        return f"the previous app configuration was already restored from {saved}"
    b = _backend(ctx)
    b.restore(Path(saved))
    ctx.state["app_restored"] = True
    _event(ctx, "app config restored", backup=saved)
    try:
        how = b.redeploy()
    except HAError as e:
        return f"previous app configuration restored from {saved}, but its redeploy failed: {e}"
    return f"previous app configuration restored from {saved} and redeployed ({how})"


def _restore_safely(ctx: Context) -> str:
    """`_restore`, but a failure to restore is said plainly instead of hiding the first error."""
    try:
        return _restore(ctx)
    except HAError as e:
        saved = ctx.state.get("app_backup", "-")
        return f"putting the previous configuration back FAILED too ({e}): restore {saved} by hand"


@action("app.redeploy")
def redeploy(ctx: Context) -> Outcome:
    """Make the app pick up its new configuration; on failure put the old one back."""
    b = _backend(ctx)
    try:
        how = b.redeploy()
    except HAError as e:
        raise AppConfigError(f"redeploy failed ({e}); {_restore_safely(ctx)}") from None
    _event(ctx, "app redeployed", how=how)
    return Outcome(True, how, {})


# --- validation -----------------------------------------------------------------------------------


def _probe_client(ctx: Context, mode: str, values: dict[str, str] | None) -> tuple[Any, str]:
    """A client built exactly as the app builds it (redis_ha.client) from its configuration.

    When the configuration cannot be read (manual backend) or holds platform references this
    tool cannot resolve (Railway `${{...}}`), the inventory's view of `mode` stands in for it.
    """
    keys = (
        *appconfig.target_vars(ctx.inv, mode),
        appclient.ENV_PASSWORD_FILE,
        appclient.ENV_PASSWORD,
    )
    env = {k: v for k, v in (values or {}).items() if k in keys}
    if not env or any("${{" in v for v in env.values()):
        env = {k: v for k, v in appconfig.target_vars(ctx.inv, mode).items() if v is not None}
        if "${{" in env.get(appconfig.VAR_URL, ""):
            env[appconfig.VAR_URL] = appconfig.single_url(dataclasses.replace(ctx.inv, app={}))
        pw = ctx.inv.password()
        if pw:
            env[appclient.ENV_PASSWORD] = pw
    elif not env.get(appclient.ENV_PASSWORD_FILE) and not env.get(appclient.ENV_PASSWORD):
        pw = ctx.inv.password()  # the app gets it from a secret store we cannot see
        if pw:
            env[appclient.ENV_PASSWORD] = pw
    cfg = appclient.config_from_env(env)
    return appclient.from_config(cfg, retry_budget_s=1.0), cfg.describe()


@check("rollback.sessions_ok")
def sessions_ok(ctx: Context, mode: str) -> Outcome:
    """A probe session written the way the app now connects reads back (and the app is healthy)."""
    _check_mode(mode)
    b = _backend(ctx)
    try:
        values = b.read()
        c, where = _probe_client(ctx, mode, values)
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
    copied = ctx.state.get("warm_copied")
    if copied:
        msg += f"; {copied} warmed sessions in place"
    url = ctx.inv.app.get("health_url")
    if url:
        ok, said = app_health(str(url))
        if not ok:
            return Outcome(False, f"{msg}, but the app health check failed: {said}", {})
        msg += f"; app health {said}"
    return Outcome(True, msg, {"via": where})


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


@action("rollback.validate")
def validate(ctx: Context, mode: str, wait_s: float = 30) -> Outcome:
    """Check sessions end to end in `mode` until OK or `wait_s`; if it never works, restore."""
    deadline = time.monotonic() + wait_s
    while True:
        out = sessions_ok(ctx, mode=mode)
        if out.ok or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not out.ok:
        raise AppConfigError(f"validation failed ({out.message}); {_restore_safely(ctx)}")
    _event(ctx, "validated", result=out.message)
    return out


@action("rollback.sentinel_intact", changes=False)
def sentinel_intact(ctx: Context) -> Outcome:
    """Say whether the Sentinel cluster is still running and untouched (never fails the run)."""
    before = ctx.state.get("sentinel_primary_before")
    try:
        out = sentinel_running(ctx)
    except HAError as e:
        out = Outcome(False, str(e), {})
    now = out.data.get("primary")
    if out.ok and before and now != before:
        out.message += f" (it was {before} when the switch began: a failover happened meanwhile)"
    if not out.ok:
        out.message = f"WARNING: {out.message}; the app switch itself is done"
    ctx.state["sentinel_after"] = out.message
    _event(ctx, "Sentinel cluster checked", result=out.message)
    return Outcome(True, out.message, out.data)


# --- the report -----------------------------------------------------------------------------------


def _fmt_t(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + " UTC"


def report_text(ctx: Context, budget_s: float, steps: list[dict[str, Any]] | None = None) -> str:
    """The Markdown report: timeline, who, what changed, how to undo."""
    to = ctx.state.get("rollback_to", SINGLE)
    start = float(ctx.state.get("rollback_started", time.time()))
    now = time.time()
    total = now - start
    title = "Rollback to the single instance" if to == SINGLE else "Roll forward to Sentinel"
    undo = "invoke rollback.undo" if to == SINGLE else "invoke rollback"
    lines = [
        f"# {title}: report",
        "",
        f"- Inventory: `{ctx.inv.path}`",
        f"- Operator: {ctx.state.get('operator', _who())}",
        f"- Started: {_fmt_t(start)}, finished: {_fmt_t(now)}",
        f"- Total: {total:.1f} s of the {budget_s:.0f} s budget "
        f"({'within' if total <= budget_s else 'OVER'} budget)",
        "",
        "## Steps",
        "",
    ]
    if steps:
        lines += ["| step | status | took | expected |", "|---|---|---:|---:|"]
        for s in steps:
            exp = f"{s['expected_s']:.0f} s" if s.get("expected_s") else "-"
            over = " (over)" if s.get("expected_s") and s["duration"] > s["expected_s"] else ""
            lines.append(f"| {s['id']} | {s['status']} | {s['duration']:.1f} s{over} | {exp} |")
        lines.append("")
    lines += ["## Timeline", ""]
    for ev in ctx.state.get("rollback_events", []):
        extra = ", ".join(f"{k}: {v}" for k, v in ev.items() if k not in ("at", "what"))
        lines.append(f"- {_fmt_t(ev['at'])} {ev['what']}" + (f" ({extra})" if extra else ""))
    changes = appconfig.target_vars(ctx.inv, to)
    lines += [
        "",
        "## What changed",
        "",
        f"- App configuration ({_backend(ctx).where()}):",
        *[
            f"  - `{k}` " + ("removed" if v is None else f"set to `{v}`")
            for k, v in changes.items()
        ],
        f"- Previous configuration saved to `{ctx.state.get('app_backup', '-')}`",
    ]
    where = "the single instance" if to == SINGLE else "the Sentinel primary"
    lines.append(f"- Sessions copied to {where}: {ctx.state.get('warm_copied', 0)}")
    lines += [
        f"- Sentinel cluster: {ctx.state.get('sentinel_after', 'not checked')}",
        "",
        "## How to undo",
        "",
        f"Run `{undo} --inventory {ctx.inv.path}`, or put the saved configuration back by hand "
        f"(`{ctx.state.get('app_backup', '-')}`) and redeploy the app.",
        "",
    ]
    return "\n".join(lines)


def this_run(ctx: Context, procedure: str) -> Path | None:
    """The journal of the run in progress: the newest unfinished `procedure` run here."""
    pat = re.compile(rf"^\d{{8}}T\d{{6}}Z-{re.escape(procedure)}(-\d+)?$")
    for path in reversed(journalmod.runs(journal_dir(ctx))):
        if not pat.match(path.stem):
            continue
        recs = journalmod.read(path)
        start = next((r for r in recs if r["event"] == "start"), None)
        if (
            start
            and start.get("inventory") == str(ctx.inv.path)
            and not any(r["event"] == "end" for r in recs)
        ):
            return path
    return None


def step_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-step result and duration from a run's journal (the last record of each step wins)."""
    steps: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["event"] == "step-end":
            steps[r["step"]] = {
                "id": r["step"],
                "status": r.get("result", "?"),
                "duration": float(r.get("duration_s") or 0),
                "expected_s": r.get("expected_s"),
            }
    return list(steps.values())


@action("rollback.write_report", changes=False)
def write_report(ctx: Context, budget_s: float = 1800) -> Outcome:
    """Write the Markdown report next to the run's journal."""
    to = ctx.state.get("rollback_to", SINGLE)
    procedure = "rollback" if to == SINGLE else "rollback-undo"
    jpath = this_run(ctx, procedure)
    steps = None
    if jpath is not None:
        recs = journalmod.read(jpath)
        steps = step_times(recs)
        start = next((r for r in recs if r["event"] == "start"), None)
        if start:
            ctx.state["rollback_started"] = float(start["ts"])
        path = jpath.with_name(f"{jpath.stem}-report.md")
    else:
        d = journal_dir(ctx)
        d.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = d / f"{stamp}-{procedure}-report.md"
    text = report_text(ctx, budget_s, steps)
    for secret in ctx.inv.secrets():
        text = text.replace(secret, "***")
    path.write_text(text)
    total = time.time() - float(ctx.state.get("rollback_started", time.time()))
    ctx.state["report"] = str(path)
    return Outcome(
        True,
        f"report written to {path} (total {total:.0f} s of the {budget_s:.0f} s budget)",
        {"path": str(path)},
    )
