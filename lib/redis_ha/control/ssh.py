"""Hosts reached over ssh (fabric): a systemd unit per node. Not implemented yet.

Every operation raises a ControlError saying "not supported yet", so a procedure stops before
its first side effect on such a node and the runbook's by-hand instructions take over.
"""

from __future__ import annotations

from redis_ha.control.base import Control


class SshControl(Control):
    """Placeholder: refuses every operation with a clear message."""

    backend = "ssh"
