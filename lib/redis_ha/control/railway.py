"""Railway services (one per node): restart and logs through the Railway CLI. Placeholder until
issue 12.

`for_node` refuses a placeholder before any operation, and every operation of it raises a
ControlError, so a procedure stops before its first side effect on such a node and the
runbook's by-hand instructions take over.
"""

from __future__ import annotations

from redis_ha.control.base import Control


class RailwayControl(Control):
    """Placeholder: refuses every operation with a clear message."""

    backend = "railway"
    implemented = False
