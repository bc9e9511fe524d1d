"""`status` and `health`: what the cluster looks like now (read-only, root tasks)."""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory


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


@task(help={"inventory": INVENTORY_HELP, "json": "print the verdict as JSON"})
@expected_errors
def health(c, inventory=None, json=False):
    """Print the health verdict; exit 0 healthy, 1 degraded, 2 down, 3 unknown (for alerting)."""
    inv = load_inventory(inventory)
    facts = factsmod.gather(inv, detail=False)
    h = healthmod.assess(inv, facts)
    if json:
        ui.print_json(h.to_dict())
    else:
        ui.verdict(h, facts.elapsed_ms)
    if h.exit_code:
        raise Exit(code=h.exit_code)
