"""Tasks for issue 8 (an empty primary restarting before Sentinel notices): drill and units."""

from __future__ import annotations

from pathlib import Path

from invoke import task
from invoke.exceptions import Exit
from rich import box
from rich.table import Table

from redis_ha import ui, units
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.control import starts_safely
from redis_ha.errors import InventoryError
from redis_ha.lab import restart_empty
from redis_ha.lab.cluster import Lab

WRAPPER_CHOICES = {"inventory": None, "on": True, "off": False}


@task(
    help={
        "inventory": INVENTORY_HELP,
        "node": "node to restart (default: the current primary)",
        "keys": "keys to load before the restart (default 5000)",
        "delay": "seconds between the kill and the restart (default 0.3)",
        "wrapper": "start through redis_ha.safestart: on, off, or inventory (control.safestart)",
        "rate": "writes per second during the drill (default 0: none)",
        "simulator": "drive the --rate with the app simulator (lab.traffic) instead of a writer",
        "json": "print the result as JSON",
        "dry_run": "say what the drill would do; touch nothing",
    }
)
@expected_errors
def restart_empty_drill(
    c,
    inventory=None,
    node=None,
    keys=5000,
    delay=0.3,
    wrapper="inventory",
    rate=0,
    simulator=False,
    json=False,
    dry_run=False,
):
    """Lab drill: kill the primary and restart it empty at once; show keys before/after per node."""
    if wrapper not in WRAPPER_CHOICES:
        raise InventoryError(
            f"--wrapper must be one of {', '.join(WRAPPER_CHOICES)}, not {wrapper!r}"
        )
    inv = load_inventory(inventory)
    lab = Lab(inv)  # refuses inventories without `lab: true`
    if dry_run:
        ep = inv.node(node) if node else lab.current_primary()
        target = ep.name if node else f"the primary ({ep.name})"
        on = WRAPPER_CHOICES[wrapper]
        via = starts_safely(inv, ep) if on is None else on
        ui.console.print(
            f"dry run: would load {keys} keys, SIGKILL {target}, start it again {delay} s later "
            f"{'through safestart' if via else 'directly (no wrapper)'}"
            f"{f' under {rate} writes/s' if int(rate) else ''}; nothing done"
        )
        return
    res = restart_empty.run(
        lab,
        node=node,
        keys=int(keys),
        delay=float(delay),
        wrapper=WRAPPER_CHOICES[wrapper],
        rate=int(rate),
        simulator=simulator,
    )
    if json:
        ui.print_json(res.to_dict())
    else:
        _show(res)
    if res.lost:
        raise Exit(code=1)


def _show(res: restart_empty.DrillResult) -> None:
    how = "through safestart" if res.wrapper else "directly (no wrapper)"
    ui.console.print(
        f"restarted {res.node} {how}: port open {res.restart_s:.2f} s after the SIGKILL"
    )
    if res.decision:
        ui.console.print(res.decision)
    t = Table(box=box.SIMPLE, title_justify="left", title="keys on every node")
    for col in ("node", "role before", "keys before", "role after", "keys after", "loaded kept"):
        t.add_column(col, justify="right" if "keys" in col or "kept" in col else "left")
    for b, a in zip(res.before, res.after, strict=True):
        kept = "-" if a.loaded is None else f"{a.loaded}/{res.loaded}"
        t.add_row(b.name, b.role or "down", str(b.keys), a.role or "down", str(a.keys), kept)
    ui.console.print(t)
    ui.console.print(
        f"Sentinels named {', '.join(map(str, res.sentinels_before))} before, "
        f"{', '.join(map(str, res.sentinels_after))} after"
    )
    if res.writes_acked:
        ui.console.print(
            f"writer: {res.writes_acked} acknowledged, {res.lost_before_marker} of the "
            f"{res.writes_acked_before_marker} replicated before the kill lost, "
            f"{res.lost_after_marker} acked in the last ms before the kill lost, "
            f"longest gap {res.longest_gap_s:.2f} s"
        )
    if res.app:
        sim = res.app
        ui.console.print(
            f"app simulator: {sim['acked_writes']} acknowledged writes, {sim['missing_writes']} "
            f"missing, {sim['missing_keys']} keys gone, {sim['failed']} failed requests, longest "
            f"write stall {sim['write_stall_s']:.2f} s, hit rate {sim['hit_rate'].get('overall')}"
        )
    for p in res.problems:
        ui.console.print(f"[yellow]{p}[/]")
    if res.lost:
        ui.console.print("[bold red]DATA LOST[/]: see runbooks/safe-restart.md")
    else:
        ui.console.print("[bold green]no data lost[/]")


@task(
    help={
        "inventory": INVENTORY_HELP,
        "out": "folder to write the unit files and Railway start commands into",
        "python": f"python with redis-ha-runbooks installed (default {units.DEFAULT_PYTHON})",
        "server": f"redis-server binary (default {units.DEFAULT_SERVER})",
        "conf_dir": f"where <node>.conf and inventory.yaml live (default {units.DEFAULT_CONF_DIR})",
    }
)
@expected_errors
def render_units(
    c,
    out,
    inventory=None,
    python=units.DEFAULT_PYTHON,
    server=units.DEFAULT_SERVER,
    conf_dir=units.DEFAULT_CONF_DIR,
):
    """Render systemd units and Railway start commands that start redis through safestart."""
    inv = load_inventory(inventory)
    for f in units.render_units(inv, Path(out), python=python, server=server, conf_dir=conf_dir):
        ui.console.print(f"wrote {f}")
