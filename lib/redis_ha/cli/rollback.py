"""`invoke rollback` / `invoke rollback.undo`: the app back to the single instance, and forward.

Both playbooks read `$no_warm` (skip the warm-up) and `$yes` (a manual app config backend
refuses --yes in preflight, since a person must make that change).
"""

from __future__ import annotations

from invoke import Collection, task

from redis_ha.cli.procedures import RUN_HELP, run_procedure


@task(
    help={**RUN_HELP, "no_warm": "do not copy live sessions into the single instance first"},
)
def run(c, inventory=None, dry_run=False, yes=False, resume=None, target_name=None, no_warm=False):
    """Roll the app back to the single Redis instance within the 30-minute budget."""
    run_procedure(
        "rollback",
        inventory,
        params={"no_warm": bool(no_warm), "yes": bool(yes)},
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


@task(help={**RUN_HELP, "no_warm": "do not copy the sessions back to the cluster first"})
def undo(c, inventory=None, dry_run=False, yes=False, resume=None, target_name=None, no_warm=False):
    """Undo the rollback: point the app at Sentinel discovery again, with the same checks."""
    run_procedure(
        "rollback-undo",
        inventory,
        params={"no_warm": bool(no_warm), "yes": bool(yes)},
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


rollback = Collection("rollback")
rollback.add_task(run, default=True)
rollback.add_task(undo)
