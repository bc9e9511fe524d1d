"""Containers (one per node): docker stop / start / logs. A placeholder until issue 12.

`for_node` refuses a placeholder before any operation, and every operation of it raises a
ControlError, so a procedure stops before its first side effect on such a node and the
runbook's by-hand instructions take over.
"""

from __future__ import annotations

from redis_ha.control.base import Control


class DockerControl(Control):
    """Placeholder: refuses every operation with a clear message."""

    backend = "docker"
    implemented = False
