"""`invoke rollback` / `invoke rollback.undo`: the app back to the single instance, and forward.

Both playbooks read `$no_warm` (skip the warm-up), `$validate_wait` (how long the app may take
to serve sessions after its redeploy: a Railway redeploy can take more than the default minute)
and `$yes` (a manual app config backend refuses --yes in preflight, since a person must make
that change).
"""

from __future__ import annotations

from invoke import Collection, task

from redis_ha.cli.procedures import RUN_HELP, run_procedure

VALIDATE_WAIT_S = 60
VALIDATE_HELP = (
    "seconds the app may take to serve sessions after its redeploy before the config is put "
    f"back (default {VALIDATE_WAIT_S})"
)


def _params(no_warm: bool, yes: bool, validate_wait: float) -> dict:
    return {"no_warm": bool(no_warm), "yes": bool(yes), "validate_wait": float(validate_wait)}


@task(
    help={
        **RUN_HELP,
        "no_warm": "do not copy live sessions into the single instance first",
        "validate_wait": VALIDATE_HELP,
    },
)
def run(
    c,
    inventory=None,
    dry_run=False,
    yes=False,
    resume=None,
    target_name=None,
    no_warm=False,
    validate_wait=VALIDATE_WAIT_S,
):
    """Roll the app back to the single Redis instance within the 30-minute budget."""
    run_procedure(
        "rollback",
        inventory,
        params=_params(no_warm, yes, validate_wait),
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


@task(
    help={
        **RUN_HELP,
        "no_warm": "do not copy the sessions back to the cluster first",
        "validate_wait": VALIDATE_HELP,
    }
)
def undo(
    c,
    inventory=None,
    dry_run=False,
    yes=False,
    resume=None,
    target_name=None,
    no_warm=False,
    validate_wait=VALIDATE_WAIT_S,
):
    """Undo the rollback: point the app at Sentinel discovery again, with the same checks."""
    run_procedure(
        "rollback-undo",
        inventory,
        params=_params(no_warm, yes, validate_wait),
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


rollback = Collection("rollback")
rollback.add_task(run, default=True)
rollback.add_task(undo)
