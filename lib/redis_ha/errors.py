"""Expected errors: each carries one readable line for the operator.

Anything raised as an `HAError` is something the operator can act on (a bad inventory, a refused
guard, an unreachable node); tasks turn it into `invoke.Exit(message, code)` so no traceback
is shown. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

# A procedure's exit codes (the runner's; target.py refuses with EXIT_STOPPED too).
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_STOPPED, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class HAError(Exception):
    """An expected failure with a message fit for the terminal and an exit code."""

    code: int = 1

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InventoryError(HAError):
    """The inventory file is missing, malformed or inconsistent."""


class LabError(HAError):
    """The local lab cannot do what was asked (missing binaries, not a lab, start failure)."""


class ClusterError(HAError):
    """The cluster is not in a state where the requested operation is safe or possible."""


class GuardRefused(HAError):
    """A precondition refused a step: acting would make things worse."""
