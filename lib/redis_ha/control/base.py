"""How a node's process is stopped and started: the interface every control backend implements.

Procedures say *what* must happen to a node ("restart redis-2 as a replica of redis-1 with
replica-priority 0"); a backend says *how* on that platform (a local process, a host over ssh, a
Railway service, a container). Backends that are not implemented yet refuse loudly instead of
pretending: an operator must never believe a node was restarted when it was not.
"""

from __future__ import annotations

from redis_ha.errors import HAError
from redis_ha.inventory import Endpoint, Inventory


class ControlError(HAError):
    """The control backend cannot do what was asked (unsupported, or the process misbehaved)."""


class Control:
    """Process control for the nodes of one inventory. Subclasses override what they support."""

    backend = "abstract"

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv

    def is_running(self, node: Endpoint) -> bool:
        """True when the node's redis-server process exists (answering or not)."""
        raise self._unsupported("is_running")

    def stop(self, node: Endpoint) -> None:
        """Stop the node's process and wait until it is gone."""
        raise self._unsupported("stop")

    def start(
        self,
        node: Endpoint,
        *,
        replicaof: Endpoint | None = None,
        overrides: dict[str, str] | None = None,
    ) -> None:
        """Start the node; `overrides` are settings that must hold from its first instant."""
        raise self._unsupported("start")

    def restart(
        self,
        node: Endpoint,
        *,
        replicaof: Endpoint | None = None,
        overrides: dict[str, str] | None = None,
    ) -> None:
        """Stop (if running) then start: without persistence the node comes back empty."""
        if self.is_running(node):
            self.stop(node)
        self.start(node, replicaof=replicaof, overrides=overrides)

    def log_tail(self, node: Endpoint, lines: int = 200) -> list[str] | None:
        """The last lines of the node's log, or None when this backend cannot read it."""
        return None

    def mem_available(self, node: Endpoint) -> int | None:
        """Bytes of memory available on the node's host, or None when unknown."""
        return None

    def _unsupported(self, what: str) -> ControlError:
        return ControlError(
            f"control backend {self.backend!r} cannot {what} yet (not supported yet); "
            "do this step by hand as the runbook describes, then continue",
            code=2,
        )


def backend_name(inv: Inventory, node: Endpoint) -> str:
    """A node's own `control.backend` wins over the inventory-wide one (default: local)."""
    return str(node.control.get("backend") or inv.control.get("backend") or "local")
