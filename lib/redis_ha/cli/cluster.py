"""`status` and `health`: what the cluster looks like now (read-only, root tasks)."""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.errors import InventoryError


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
