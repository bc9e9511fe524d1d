"""`invoke demo`: the whole story in one command, on the lab, under app traffic.

Lab up, the app simulator at 1000 ops/s, a planned switchover (`failover.manual --yes`), then a
crash of the new primary and Sentinel's automatic failover, and a table of what the app saw
during each event. The procedures run as an operator would run them (separate processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from invoke import task
from rich.table import Table

from redis_ha import ui
from redis_ha.bench.failover import wait_agree, wait_settled
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.errors import LabError
from redis_ha.lab.cluster import Lab
from redis_ha.lab.traffic import Traffic

PROCEDURE_TIMEOUT_S = 120
SHOW = ("✓", "✗", "writes paused on", "COMPLETED", "FAILED", "REFUSED", "error:")


def _procedure(args: list[str], inv_path: Path) -> int:
    """Run a task as an operator would (its own `redis-ha` process); print its result lines."""
    argv = [sys.executable, "-m", "redis_ha", *args, "--inventory", str(inv_path)]
    try:
        p = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PROCEDURE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env={"COLUMNS": "160", **os.environ},
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{args[0]} did not finish within {PROCEDURE_TIMEOUT_S} s") from None
    for line in (p.stdout + p.stderr).splitlines():
        if any(s in line for s in SHOW):
            ui.console.print(f"    {line.strip()}", soft_wrap=True, markup=False)
    return p.returncode


def _event(
    lab: Lab, name: str, act: Any, rate: float, client: str, keys: int = 5000
) -> dict[str, Any]:
    """Run `act` under traffic; the app's view of it."""
    wait_settled(lab)
    t = Traffic(lab.inv, rate=rate, client=client, keys=keys, prefix="demo:")
    t.start()
    try:
        time.sleep(2.0)
        ui.console.print(f"[bold]{name}[/]  (app: {rate:g} ops/s, {client} client)")
        detail = act()
        wait_settled(lab)
        time.sleep(2.0)
    finally:
        rep = t.stop()
    hit = rep.hit_rate.get("after_failover")
    return {
        "event": name,
        "lost": rep.missing_writes,
        "stall_s": rep.write_stall_s,
        "failed": rep.failed,
        "errors": rep.errors,
        "hit_after": hit,
        "ops_per_s": rep.ops_per_s,
        "detail": detail,
    }


def _table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="What the app saw", title_justify="left")
    for col in ("event", "lost writes", "longest write stall", "failed requests", "hit rate after"):
        t.add_column(col, justify="left" if col == "event" else "right")
    for r in rows:
        hit = "-" if r["hit_after"] is None else f"{r['hit_after'] * 100:.1f}%"
        t.add_row(r["event"], str(r["lost"]), f"{r['stall_s']:.2f} s", str(r["failed"]), hit)
    return t


@task(
    help={
        "inventory": INVENTORY_HELP,
        "keep": "leave the lab running at the end",
        "rate": "app simulator ops/s (default 1000)",
        "client": "app client: recommended (default) or naive",
    }
)
@expected_errors
def demo(c, inventory=None, keep=False, rate=1000, client="recommended"):
    """Lab + app traffic: a planned switchover, then a crash and Sentinel's failover; a table."""
    inv = load_inventory(inventory)
    lab = Lab(inv)  # refuses inventories without `lab: true`
    t0 = time.monotonic()
    try:
        ui.console.print(f"[bold]lab up[/] ({inv.path})")
        lab.up(timeout=60)
        rows = []

        def switchover() -> dict[str, Any]:
            code = _procedure(["failover.manual", "--yes"], inv.path)
            return {"exit_code": code, "primary": lab.current_primary().name}

        rows.append(_event(lab, "planned switchover", switchover, float(rate), client))

        def crash() -> dict[str, Any]:
            victim = lab.current_primary().name
            lab.stop(victim, kill=True)
            ui.console.print(f"    killed {victim} (SIGKILL); waiting for Sentinel")
            took, new = wait_agree(inv, victim, time.monotonic())
            ui.console.print(f"    every Sentinel names {new} after {took} s")
            _procedure(["failover.verify"], inv.path)
            lab.up(timeout=60)  # the killed node comes back empty, as a replica
            ui.console.print(f"    restarted {victim}: it rejoins as a replica of {new}")
            return {"killed": victim, "new_primary": new, "agree_s": took}

        rows.append(_event(lab, "primary crash", crash, float(rate), client))
        ui.console.print(_table(rows))
        ui.console.print(f"demo took {time.monotonic() - t0:.0f} s")
    finally:
        if keep:
            ui.console.print(f"lab left running (lab.down --inventory {inv.path} stops it)")
        else:
            lab.down()
            ui.console.print("lab down")
