"""Hosts reached over ssh (fabric): a systemd unit per node. A placeholder until issue 12.

`for_node` refuses a placeholder before any operation, and every operation of it raises a
ControlError, so a procedure stops before its first side effect on such a node and the
runbook's by-hand instructions take over.
"""

from __future__ import annotations

from redis_ha.control.base import Control


class SshControl(Control):
    """Placeholder: refuses every operation with a clear message."""

    backend = "ssh"
    implemented = False
