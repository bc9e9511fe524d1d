"""Read-only tasks: status, health and configuration (render, drift)."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from redis_ha import drift as driftmod
from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import render, ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.errors import HAError, InventoryError


@task(help={"inventory": INVENTORY_HELP, "json": "print one JSON object instead of tables"})
@expected_errors
def status(c, inventory=None, json=False):
    """Show every node and Sentinel: role, replication, what each Sentinel believes, problems."""
    inv = load_inventory(inventory)
    facts = factsmod.gather(inv)
    health = healthmod.assess(inv, facts)
    if json:
        ui.print_json(healthmod.status_dict(inv, facts, health))
    else:
        ui.status_tables(facts, health)


def _unknown(json: bool, error: str, check: str | None) -> None:
    """UNKNOWN (exit 3): the tool cannot judge, so it must not say "down" (a false page)."""
    code = healthmod.EXIT_CODES[healthmod.UNKNOWN]
    if json:
        ui.print_json({"level": healthmod.UNKNOWN, "error": error, "check": check, "exit": code})
    else:
        line = f"UNKNOWN  cannot judge: {error}" + (f"; check {check}" if check else "")
        ui.console.print(line, soft_wrap=True, markup=False)
    raise Exit(code=code)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "json": "print the verdict as JSON",
        "prometheus": "also write the metrics to FILE (node_exporter textfile collector)",
    }
)
@expected_errors
def health(c, inventory=None, json=False, prometheus=None):
    """Print the verdict; exit 0 healthy, 1 degraded, 2 down, 3 unknown (cron and alerting)."""
    try:
        inv = load_inventory(inventory)
    except InventoryError as e:
        _unknown(json, str(e), None)
    facts = factsmod.gather(inv, detail=False)
    h = healthmod.assess(inv, facts)
    if prometheus:
        from redis_ha import metrics  # prometheus_client only when asked for

        metrics.write_textfile(prometheus, metrics.samples(inv, facts, h))
    if h.level == healthmod.UNKNOWN:
        _unknown(json, h.problems[0], inv.credential_source())
    if json:
        ui.print_json(h.to_dict())
    else:
        ui.verdict(h, facts.elapsed_ms)
    if h.exit_code:
        raise Exit(code=h.exit_code)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "out": "folder to write <name>.conf files into",
        "primary": "node that starts as primary (default: the first node)",
    }
)
@expected_errors
def config_render(c, out, inventory=None, primary=None):
    """Render redis.conf and sentinel.conf for every node from the inventory (mode 0600)."""
    inv = load_inventory(inventory)
    first = inv.node(primary) if primary else None
    try:
        files = render.render_all(inv, Path(out), first)
    except OSError as e:
        raise HAError(f"cannot write {e.filename or out}: {e.strerror or e}") from None
    for f in files:
        ui.console.print(f"wrote {f}")


@task(help={"inventory": INVENTORY_HELP, "json": "print the differences as JSON"})
@expected_errors
def config_drift(c, inventory=None, json=False):
    """Compare the live settings of every node and Sentinel with the inventory; exit 1 on drift."""
    inv = load_inventory(inventory)
    facts = factsmod.gather(inv, detail=False)  # CONFIG GET and SENTINEL MASTER are enough
    drifts, unchecked = driftmod.find_drift(inv, facts)
    if json:
        ui.print_json(
            {"drift": [d.__dict__ for d in drifts], "unchecked": unchecked, "ok": not drifts}
        )
    else:
        for d in drifts:
            ui.console.print(f"[yellow]drift[/] {d}")
        for u in unchecked:
            ui.console.print(f"[red]not checked[/] {u}")
        if not drifts:
            n = len(inv.nodes) + len(inv.sentinels) - len(unchecked)
            ui.console.print(f"[green]no drift[/] on the {n} targets checked")
    if drifts or unchecked:
        raise Exit(code=1)


config = Collection("config")
config.add_task(config_render, "render")
config.add_task(config_drift, "drift")
