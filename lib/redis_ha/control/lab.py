"""The lab's backend: local redis-server processes managed by PID (`redis_ha.lab.cluster.Lab`).

Only lab inventories (`lab: true`, loopback addresses) may be controlled this way: `Lab` refuses
anything else, so a production inventory can never have its nodes started on this machine.
"""

from __future__ import annotations

from pathlib import Path

from redis_ha.control.base import Control
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab.cluster import Lab, wait_port_free


class LabProcesses(Control):
    """Start and stop the lab's redis-server processes by PID."""

    backend = "lab"

    def __init__(self, inv: Inventory) -> None:
        super().__init__(inv)
        self.lab = Lab(inv)

    def is_running(self, node: Endpoint) -> bool:
        return self.lab.pid(node.name) is not None

    def stop(self, node: Endpoint) -> None:
        self.lab.stop(node.name)

    def _start(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> None:
        wait_port_free(node)  # a killed node's threads may still hold the port
        self.lab.start_node(node, replicaof=replicaof, overrides=overrides, safe=safe)

    def start_sentinel(self, sentinel: Endpoint) -> None:
        if self.lab.pid(sentinel.name) is None:
            wait_port_free(sentinel)
            self.lab.start_sentinel(sentinel, primary=self.lab.current_primary())

    def log_tail(self, node: Endpoint, lines: int = 200) -> list[str] | None:
        try:
            text = self.lab.log(node.name).read_text(errors="replace")
        except OSError:
            return None
        return text.splitlines()[-lines:] if lines > 0 else []

    def mem_available(self, node: Endpoint) -> int | None:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
