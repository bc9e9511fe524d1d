"""Railway services (one per node): restart through the Railway CLI. Not implemented yet.

Every operation raises a ControlError saying "not supported yet", so a procedure stops before
its first side effect on such a node and the runbook's by-hand instructions take over.
"""

from __future__ import annotations

from redis_ha.control.base import Control


class RailwayControl(Control):
    """Placeholder: refuses every operation with a clear message."""

    backend = "railway"
