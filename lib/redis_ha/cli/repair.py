"""The repairs `incident` leads to, as tasks: `sentinel.repair`, `memory.relieve`,
`writes.unpause`, `config.converge` (each runs its playbook through the runner)."""

from __future__ import annotations

from invoke import Collection, task

from redis_ha.cli.procedures import RUN_HELP, run_procedure


@task(help=RUN_HELP)
def repair(c, inventory=None, dry_run=False, yes=False, resume=None):
    """Start down Sentinels, re-monitor lost ones, wait out TILT, verify agreement and quorum."""
    run_procedure("sentinel-repair", inventory, dry_run=dry_run, yes=yes, resume=resume)


@task(help=RUN_HELP)
def relieve(c, inventory=None, dry_run=False, yes=False, resume=None):
    """Primary out of memory or evicting: memory settings back to the inventory, verify writes."""
    run_procedure("memory-pressure", inventory, dry_run=dry_run, yes=yes, resume=resume)


@task(help=RUN_HELP)
def unpause(c, inventory=None, dry_run=False, yes=False, resume=None):
    """Writes left paused (CLIENT PAUSE): lift the pause, verify a write goes through."""
    run_procedure("writes-paused", inventory, dry_run=dry_run, yes=yes, resume=resume)


@task(help=RUN_HELP)
def converge(c, inventory=None, dry_run=False, yes=False, resume=None):
    """Put drifted live settings back to the inventory's values (nodes and Sentinels)."""
    run_procedure("config-drift", inventory, dry_run=dry_run, yes=yes, resume=resume)


sentinel = Collection("sentinel", repair)
memory = Collection("memory", relieve)
writes = Collection("writes", unpause)
