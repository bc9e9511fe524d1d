"""The command line: the root namespace, and the `redis-ha` program that serves it.

The installed `redis-ha` command (and `python -m redis_ha`) is an invoke `Program` over `ns`;
in a checkout, tasks.py hands the same `ns` to `invoke`. Each CLI module owns its collection;
this module only puts them side by side.
"""

from __future__ import annotations

import os
import sys

from invoke import Collection, Program
from invoke.exceptions import Exit

from redis_ha import __version__
from redis_ha.cli import (
    bench,
    check,
    cluster,
    config,
    demo,
    drill,
    failover,
    incident,
    journal,
    lab,
    monitor,
    repair,
    replica,
    rollback,
    runbooks,
    splitbrain,
)
from redis_ha.cli.common import friendly_parse_errors

friendly_parse_errors()

ns = Collection(
    # at 3 a.m.
    incident.incident_ns,
    cluster.status,
    cluster.health,
    check.check,
    # the procedures
    failover.failover,
    replica.replica,
    splitbrain.splitbrain,
    rollback.rollback,
    repair.sentinel,
    repair.memory,
    repair.writes,
    runbooks.runbooks,
    journal.journal,
    # monitoring
    monitor.watch,
    monitor.metrics,
    monitor.capacity,
    monitor.cost,
    # configuration
    config.config,
    # lab, drills, benchmarks
    lab.lab,
    demo.demo,
    drill.drill,
    bench.bench,
)


class Tool(Program):
    """invoke's Program, refusing its `--dry`: it only echoes shell commands, which these tasks
    never run, so `redis-ha --dry failover.manual` would look like a dry run and fail over."""

    def update_config(self, merge: bool = True) -> None:
        if self.args.dry.value:
            raise Exit("error: --dry does not apply here; use the task's own --dry-run", code=2)
        super().update_config(merge)


program = Tool(namespace=ns, version=__version__, name="redis-ha", binary="redis-ha")


def main() -> None:
    """The `redis-ha` console script."""
    try:
        program.run()
    except BrokenPipeError:  # `redis-ha --list | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
