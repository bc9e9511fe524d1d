"""The command an operator types to run a task: `redis-ha X` where the installed tool runs,
`invoke X` in a checkout. Hints print it so that they can be pasted as they are."""

from __future__ import annotations

import sys
from pathlib import Path

PROGRAM = "redis-ha"  # the console script (pyproject [project.scripts]) and the app's Program
CHECKOUT = "invoke"


def program(argv0: str | None = None) -> str:
    """`redis-ha` when this process was started as the installed tool (the console script, or
    `python -m redis_ha`), else `invoke` (a checkout's tasks.py, and anything else)."""
    if argv0 is None:
        argv0 = sys.argv[0] if sys.argv else ""
    path = Path(argv0)
    if path.stem == PROGRAM or (path.name == "__main__.py" and path.parent.name == "redis_ha"):
        return PROGRAM
    return CHECKOUT


def command(task: str) -> str:
    """`task` ("failover.verify --old redis-1") as the whole command line to type here."""
    return f"{program()} {task}"
