"""The local lab: start and stop a real 3+3 cluster of processes on loopback."""

from __future__ import annotations

from invoke import Collection, task

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.lab.binaries import SERVER_HELP
from redis_ha.lab.cluster import Lab


@task(
    help={
        "inventory": INVENTORY_HELP,
        "timeout": "seconds to wait for a healthy cluster",
        "server": SERVER_HELP,
    }
)
@expected_errors
def up(c, inventory=None, timeout=30, server=None):
    """Start the lab cluster (idempotent) and wait until it is healthy, then show its status."""
    inv = load_inventory(inventory)
    lab = Lab(inv, server=server)
    res = lab.up(timeout=float(timeout))
    if res.started:
        bins = lab.binaries()
        ui.console.print(f"started {', '.join(res.started)} on {bins.label} (state in {lab.dir})")
    else:
        ui.console.print("lab already running and healthy: nothing changed")
    facts = factsmod.gather(inv)
    ui.status_tables(facts, healthmod.assess(inv, facts))


@task(help={"inventory": INVENTORY_HELP})
@expected_errors
def down(c, inventory=None):
    """Stop every lab process by PID and remove the lab's state (.lab/)."""
    inv = load_inventory(inventory)
    stopped = Lab(inv).down()
    ui.console.print(f"stopped {', '.join(stopped)}" if stopped else "no lab process was running")


lab = Collection("lab")
lab.add_task(up)
lab.add_task(down)
