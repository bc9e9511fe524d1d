"""Monitoring tasks: `watch`, `metrics.serve`, `capacity`, `cost`."""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import sys
import threading
import time

from invoke import Collection, task
from rich.live import Live
from rich.table import Table

from redis_ha import capacity as capmod
from redis_ha import cost as costmod
from redis_ha import facts as factsmod
from redis_ha import metrics as metricsmod
from redis_ha import ui
from redis_ha import watch as watchmod
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory, stop_on_signals
from redis_ha.errors import HAError

NO_HEARTBEAT_HELP = (
    "write no heartbeat (read-only credentials): lag then comes from replication offsets"
)


def _positive(option: str, value: float) -> float:
    if value <= 0:
        raise HAError(f"--{option} must be more than 0, got {value}")
    return value


@task(
    help={
        "inventory": INVENTORY_HELP,
        "interval": "seconds between frames (default 1)",
        "once": "print one frame and exit",
        "json": "JSON: one object with --once, else one object per line per frame",
        "no_heartbeat": NO_HEARTBEAT_HELP,
        "duration": "stop after this many seconds (default: until Ctrl-C)",
    }
)
@expected_errors
def watch(
    c, inventory=None, interval=1.0, once=False, json=False, no_heartbeat=False, duration=0.0
):
    """Live view: roles, links, lag in ms, ops/s, hit rate, memory, Sentinel events."""
    inv = load_inventory(inventory)
    _positive("interval", interval)
    if duration < 0:
        raise HAError(f"--duration must not be negative, got {duration}")
    w = watchmod.Watcher(inv, heartbeat=not no_heartbeat, feed=not once)
    stop = threading.Event()
    with stop_on_signals(stop), w:
        if once:
            frame = w.frame()
            if json:
                ui.print_json(frame)
            else:
                ui.console.print(watchmod.render(frame, []))
            return
        end = time.monotonic() + duration if duration else None
        if json:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                t0 = time.monotonic()
                sys.stdout.write(jsonlib.dumps(w.frame(), default=str) + "\n")
                sys.stdout.flush()
                stop.wait(max(0.0, interval - (time.monotonic() - t0)))
            return
        with Live(console=ui.console, auto_refresh=False, screen=False) as live:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                t0 = time.monotonic()
                frame = w.frame()
                live.update(watchmod.render(frame, list(w.scroll)), refresh=True)
                stop.wait(max(0.0, interval - (time.monotonic() - t0)))


@task(
    help={
        "inventory": INVENTORY_HELP,
        "port": "port to serve /metrics on",
        "bind": "address to listen on (default 127.0.0.1; 0.0.0.0 for a remote Prometheus)",
        "no_heartbeat": NO_HEARTBEAT_HELP,
    }
)
@expected_errors
def metrics_serve(c, port, inventory=None, bind="127.0.0.1", no_heartbeat=False):
    """Prometheus exporter: every node and Sentinel, lag in ms, verdict, drift, failovers."""
    inv = load_inventory(inventory)
    try:
        p = int(port)
    except ValueError:
        raise HAError(f"--port must be a whole number, got {port!r}") from None
    if not 1 <= p <= 65535:
        raise HAError(f"--port must be between 1 and 65535, got {p}")
    stop = threading.Event()

    def ready(url: str) -> None:
        ui.err_console.print(f"serving {url} for {inv.name} (Ctrl-C to stop)")

    with stop_on_signals(stop):
        metricsmod.serve(inv, host=bind, port=p, heartbeat=not no_heartbeat, stop=stop, ready=ready)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "window": "seconds between the two samples that give the write rate (default 1)",
        "disconnect": "the replica disconnect to plan for, in seconds (default 10)",
        "json": "print the figures as JSON",
    }
)
@expected_errors
def capacity(c, inventory=None, window=1.0, disconnect=10.0, json=False):
    """Memory vs maxmemory, keys, evictions, fragmentation, hit rate, backlog vs write rate."""
    inv = load_inventory(inventory)
    _positive("window", window)
    _positive("disconnect", disconnect)
    before = factsmod.gather(inv, detail=False)
    time.sleep(window)
    after = factsmod.gather(inv, detail=False)
    cap = capmod.assess(inv, before, after, disconnect_s=disconnect)
    if json:
        ui.print_json(cap.to_dict())
        return
    t = Table(title=f"Capacity ({inv.name})", title_justify="left")
    cols = ("node", "role", "used / max", "peak", "keys", "evicted", "frag", "hits")
    for col in (*cols, "backlog", "writes", "holds"):
        t.add_column(col, no_wrap=col in ("node", "role"))
    for n in cap.nodes:
        if not n.up:
            t.add_row(n.name, "[red]down[/]", *["-"] * 9)
            continue
        used = capmod.human_bytes(n.used_memory)
        if n.maxmemory:
            used += f" / {capmod.human_bytes(n.maxmemory)} ({n.utilization:.1%})"
        holds = "-" if n.backlog_covers_s is None else f"{n.backlog_covers_s} s"
        if n.full_resync_after_disconnect:
            holds = f"[red]{holds}[/]"
        t.add_row(
            n.name,
            "primary" if n.role == "master" else str(n.role),
            used,
            capmod.human_bytes(n.used_memory_peak),
            str(n.keys),
            str(n.evicted_keys),
            "-" if n.fragmentation is None else f"{n.fragmentation:.2f}",
            "-" if n.hit_rate is None else f"{n.hit_rate:.1%}",
            capmod.human_bytes(n.backlog_bytes),
            "-" if n.write_rate_bps is None else f"{capmod.human_bytes(n.write_rate_bps)}/s",
            holds,
        )
    ui.console.print(t)
    for r in cap.recommendations or ["nothing to change"]:
        ui.console.print(f"  [yellow]>[/] {r}")


@task(
    help={
        "inventory": INVENTORY_HELP,
        "record": "add this week's row to $REDIS_HA_HOME/cost-history.csv (else ./)",
        "json": "print the estimate as JSON",
    }
)
@expected_errors
def cost(c, inventory=None, record=False, json=False):
    """Monthly cost estimate from the price table and the sizes in the inventory, vs the budget."""
    inv = load_inventory(inventory)
    est = costmod.estimate(inv)
    recorded = None
    if record:
        path = costmod.history_path()
        week, replaced = costmod.record(inv, est, path, dt.datetime.now(dt.UTC))
        recorded = {"path": str(path), "week": week, "replaced": replaced}
    if json:
        ui.print_json({**est.to_dict(), "recorded": recorded})
        return
    t = Table(title=f"Monthly cost ({inv.name}, {est.provider})", title_justify="left")
    for col in ("service", "memory GB", "vCPU", "volume GB", "$ / month"):
        t.add_column(col, justify="right" if col != "service" else "left")
    for s in est.services:
        t.add_row(
            s.name, f"{s.memory_gb:g}", f"{s.vcpu:g}", f"{s.volume_gb:g}", f"{s.monthly_usd:.2f}"
        )
    t.add_row("egress", "", "", f"{est.egress_gb:g}", f"{est.egress_usd:.2f}")
    ui.console.print(t)
    ui.console.print(
        f"usage ${est.usage_usd:.2f}; plan {est.plan} (${est.plan_fee_usd:.2f}, covers that much "
        f"usage): [bold]${est.monthly_usd:.2f} / month[/]"
    )
    if est.budget_usd is not None:
        style = "green" if est.within_budget else "red"
        word = "within" if est.within_budget else "OVER"
        ui.console.print(f"[{style}]{word} budget[/] ${est.budget_usd:.2f}")
    if est.expected_usd:
        lo, hi = est.expected_usd
        inside = lo <= est.monthly_usd <= hi
        ui.console.print(f"expected ${lo:.0f}-{hi:.0f}: {'inside' if inside else 'outside'}")
    if est.unsized:
        ui.console.print(
            f"[yellow]not counted (no size in the inventory):[/] {', '.join(est.unsized)}"
        )
    ui.console.print(f"[dim]prices: {est.prices['source']}, read {est.prices['retrieved']}[/]")
    if recorded:
        verb = "updated" if recorded["replaced"] else "added"
        ui.console.print(f"{verb} the row for {recorded['week']} in {recorded['path']}")


metrics = Collection("metrics")
metrics.add_task(metrics_serve, "serve")
