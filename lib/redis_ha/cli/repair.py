"""The repairs `incident` leads to, as tasks: `sentinel.repair`, `memory.relieve`,
`writes.unpause`, `config.converge` (each runs its playbook through the runner)."""

from __future__ import annotations

from typing import Any

from invoke import Collection, Task, task

from redis_ha.cli.procedures import RUN_HELP, run_procedure


def _runs(name: str, procedure: str, doc: str) -> Task[Any]:
    """A task `name` running `procedure` with the common run options, and no other input."""

    def body(c, inventory=None, dry_run=False, yes=False, resume=None, target_name=None):
        run_procedure(
            procedure,
            inventory,
            dry_run=dry_run,
            yes=yes,
            resume=resume,
            target_name=target_name,
        )

    body.__name__, body.__doc__ = name, doc
    made: Task[Any] = task(help=RUN_HELP)(body)
    return made


repair = _runs(
    "repair",
    "sentinel-repair",
    "Start down Sentinels, re-monitor lost ones, wait out TILT, verify agreement and quorum.",
)
relieve = _runs(
    "relieve",
    "memory-pressure",
    "Primary out of memory or evicting: memory settings back to the inventory, verify writes.",
)
unpause = _runs(
    "unpause",
    "writes-paused",
    "Writes left paused (CLIENT PAUSE): lift the pause, verify a write goes through.",
)
converge = _runs(
    "converge",
    "config-drift",
    "Put drifted live settings back to the inventory's values (nodes and Sentinels).",
)

sentinel = Collection("sentinel", repair)
memory = Collection("memory", relieve)
writes = Collection("writes", unpause)
