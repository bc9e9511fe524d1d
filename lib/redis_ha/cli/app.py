"""The command line: the root namespace, and the `redis-ha` program that serves it.

The installed `redis-ha` command (and `python -m redis_ha`) is an invoke `Program` over `ns`;
in a checkout, tasks.py hands the same `ns` to `invoke`. Each CLI module owns its collection;
this module only puts them side by side.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoke import Collection, Program

    ns: Collection
    program: Program

# Nothing heavy at import: `ns` and `program` are built on first use (PEP 562), and main()
# answers a plain `status` / `health` from cli/quick.py without loading invoke at all.


def _build() -> dict[str, Any]:
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
    from redis_ha.cli.names import PROGRAM

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
        """invoke's Program, refusing its `--dry`: it only echoes shell commands, which these
        tasks never run, so `redis-ha --dry failover.manual` would look like a dry run and fail
        over."""

        def update_config(self, merge: bool = True) -> None:
            if self.args.dry.value:
                raise Exit("error: --dry does not apply here; use the task's own --dry-run", code=2)
            super().update_config(merge)

    program = Tool(namespace=ns, version=__version__, name=PROGRAM, binary=PROGRAM)
    return {"ns": ns, "program": program, "Tool": Tool}


def __getattr__(name: str) -> Any:
    """`ns` (the root namespace), `program` and `Tool`, built when first asked for."""
    if name not in ("ns", "program", "Tool"):
        raise AttributeError(name)
    globals().update(_build())
    return globals()[name]


def main() -> None:
    """The `redis-ha` console script."""
    from redis_ha.cli import quick

    fast = quick.fast_args(sys.argv[1:])
    if fast is not None:
        from redis_ha.cli.common import plain_errors

        cmd, inv, as_json = fast
        sys.exit(plain_errors(quick.COMMANDS[cmd], inv, as_json))
    try:
        __getattr__("program").run()
    except BrokenPipeError:  # `redis-ha --list | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
