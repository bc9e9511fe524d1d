"""`invoke check`: the health-check runbook, step by step (read-only, no lock)."""

from __future__ import annotations

from invoke import task

from redis_ha.cli.procedures import RUN_HELP, run_procedure


@task(help=RUN_HELP)
def check(c, inventory=None, dry_run=False, yes=False, resume=None, target_name=None):
    """Walk through the cluster health checks step by step (read-only)."""
    run_procedure(
        "health-check", inventory, dry_run=dry_run, yes=yes, resume=resume, target_name=target_name
    )
