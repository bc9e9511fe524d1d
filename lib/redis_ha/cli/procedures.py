"""How every procedure task runs its playbook: one call, one exit code, no traceback."""

from __future__ import annotations

from typing import Any

from invoke.exceptions import Exit

from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory

RUN_HELP = {
    "inventory": INVENTORY_HELP,
    "dry_run": "gather facts, check guards and print the plan; change nothing",
    "yes": "answer yes to every prompt (and undo automatically on failure)",
    "resume": "continue an interrupted run (journal run id, or 'latest') from its first "
    "unfinished step",
    "target_name": "the cluster's name: with --yes on an inventory that is not a lab, it must "
    "match, or nothing is changed",
}


@expected_errors
def run_procedure(
    name: str,
    inventory: str | None,
    *,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    yes: bool = False,
    resume: str | None = None,
    target_name: str | None = None,
) -> None:
    """Run a playbook by name (or path) as a task: raises invoke.Exit with the run's exit code."""
    from redis_ha.runner import run_playbook  # here: `status` should not load the runner

    inv = load_inventory(inventory)
    code = run_playbook(
        name,
        inv,
        params=params or {},
        dry_run=dry_run,
        yes=yes,
        resume=resume or None,
        target_name=target_name,
    )
    if code:
        raise Exit(code=code)
