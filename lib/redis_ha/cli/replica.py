"""`invoke replica.rebuild` and `replica.diagnose`: a replica that is down, looping or lost."""

from __future__ import annotations

from invoke import Collection, task
from invoke.exceptions import Exit

from redis_ha import ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.cli.names import command
from redis_ha.cli.procedures import RUN_HELP, run_procedure

NODE_HELP = "the replica to rebuild, by inventory name (e.g. redis-2)"
OUTAGE_HELP = (
    "rebuild even when it is the last in-sync replica: the primary refuses writes "
    "(min-replicas-to-write) until the sync ends"
)


@task(
    help={
        **RUN_HELP,
        "node": NODE_HELP,
        "allow_write_outage": OUTAGE_HELP,
        "force": "rebuild even when the diagnosis finds nothing wrong",
        "sync_timeout": "seconds the full sync may take before the run fails (default 900)",
    }
)
def rebuild(
    c,
    node,
    inventory=None,
    dry_run=False,
    yes=False,
    resume=None,
    target_name=None,
    allow_write_outage=False,
    force=False,
    sync_timeout=900,
):
    """Rebuild a replica: diagnose, make it unpromotable, restart empty, full sync, restore."""
    if allow_write_outage and not dry_run:
        ui.err_console.print(
            "[bold red]WARNING: --allow-write-outage: if this is the last in-sync replica, the "
            "primary refuses EVERY write until the full sync ends.[/]"
        )
    run_procedure(
        "replica-rebuild",
        inventory,
        params={
            "node": node,
            "allow_write_outage": bool(allow_write_outage),
            "force": bool(force),
            "sync_timeout": float(sync_timeout),
        },
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


@task(help={"node": NODE_HELP, "inventory": INVENTORY_HELP, "json": "print the diagnosis as JSON"})
@expected_errors
def diagnose(c, node, inventory=None, json=False):
    """Say why a replica needs rebuilding and what a rebuild would do (read-only; exit 1 if so)."""
    from redis_ha import view as viewmod
    from redis_ha.actions import replica as replica_actions

    inv = load_inventory(inventory)
    d = replica_actions.diagnosis(viewmod.take(inv), node)
    if json:
        ui.print_json(d.to_dict())
    else:
        ui.console.print(f"[bold]{node}[/] (primary: {d.primary or 'none'})")
        for line in d.findings:
            ui.console.print(f"  why:     {line}")
        for line in d.warnings:
            ui.console.print(f"  [yellow]warning:[/] {line}")
        for line in d.refusals:
            ui.console.print(f"  [red]a rebuild would be refused:[/] {line}")
        for i, line in enumerate(d.plan, 1):
            ui.console.print(f"  plan {i}: {line}")
        if d.needs_rebuild:
            ui.console.print(
                f"[bold]rebuild recommended[/]: {command(f'replica.rebuild --node {node}')}"
            )
        else:
            ui.console.print("[bold]no reason to rebuild found[/]")
    if d.needs_rebuild:
        raise Exit(code=1)


replica = Collection("replica")
replica.add_task(rebuild)
replica.add_task(diagnose)
