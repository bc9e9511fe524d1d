"""`invoke failover.manual` (planned, zero-loss switchover) and `invoke failover.verify`."""

from __future__ import annotations

from invoke import Collection, task

from redis_ha.cli.procedures import RUN_HELP, run_procedure


@task(
    help={
        **RUN_HELP,
        "to": "replica to promote, by inventory name (default: the in-sync replica with the "
        "lowest replica-priority, then the first by name)",
        "via": "Sentinel to send SENTINEL FAILOVER to (default: the last one listed)",
    }
)
def manual(
    c, to=None, via=None, inventory=None, dry_run=False, yes=False, resume=None, target_name=None
):
    """Planned failover with no lost writes: pause, catch up, switch, demote, unpause."""
    run_procedure(
        "failover-manual",
        inventory,
        params={"to": to, "via": via},
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


@task(
    help={
        "inventory": RUN_HELP["inventory"],
        "old": "the old primary, by inventory name (default: read from the Sentinel logs)",
        "dry_run": RUN_HELP["dry_run"],
    }
)
def verify(c, old=None, inventory=None, dry_run=False):
    """After Sentinel failed over by itself: agreement, old primary, replicas, timeline."""
    run_procedure("failover-automatic", inventory, params={"old": old}, dry_run=dry_run, yes=True)


failover = Collection("failover")
failover.add_task(manual)
failover.add_task(verify)
