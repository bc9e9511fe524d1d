"""How a node's process is stopped and started: the interface every control backend implements.

Procedures say *what* must happen to a node ("restart redis-2 as a replica of redis-1 with
replica-priority 0, through the safe-start wrapper"); a backend says *how* on that platform (lab
processes, a host over ssh, a Railway service, a container). Every operation a backend does not
implement raises a ControlError naming the backend and the operation: an operator must never
believe a node was restarted, or a log read, when it was not. tests/test_control_contract.py is
the suite every backend passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from redis_ha import failpoint
from redis_ha.errors import HAError

if TYPE_CHECKING:  # at run time the inventory imports this package (its backend names)
    from redis_ha.inventory import Endpoint, Inventory


class ControlError(HAError):
    """The control backend cannot do what was asked (unsupported, or the process misbehaved)."""


class Control:
    """Process control for the nodes of one inventory. Subclasses override what they support."""

    backend: ClassVar[str] = "abstract"
    # False for a placeholder: `for_node` refuses to hand it out (see control/__init__.py).
    implemented: ClassVar[bool] = True

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv

    def is_running(self, node: Endpoint) -> bool:
        """True when the node's redis-server process exists (answering, loading or frozen)."""
        raise self._unsupported("tell whether a node runs")

    def stop(self, node: Endpoint) -> None:
        """Stop the node's process and return once it is gone (its port refuses connections).

        A node that is not running is left as it is.
        """
        raise self._unsupported("stop a node")

    def start(
        self,
        node: Endpoint,
        *,
        replicaof: Endpoint | None = None,
        overrides: dict[str, str] | None = None,
        safe: bool | None = None,
    ) -> None:
        """Start a stopped node; return once its port answers.

        `replicaof` and `overrides` hold from the node's first instant (a rebuilding replica is
        never promotable, not even for a moment). `safe` starts it through the safe-start
        wrapper (redis_ha.safestart), which may pick another role first; None: as the inventory
        says (`starts_safely`). Starting a node that runs is an error, not a second process.
        """
        self._start_stopped(node, replicaof, dict(overrides or {}), safe)
        failpoint.changed(f"started {node.name}")

    def _start_stopped(
        self,
        node: Endpoint,
        replicaof: Endpoint | None,
        overrides: dict[str, str],
        safe: bool | None,
    ) -> None:
        if self.is_running(node):
            raise ControlError(f"{node.name} is already running; stop it first, or restart it")
        self._start(
            node, replicaof, overrides, starts_safely(self.inv, node) if safe is None else safe
        )

    def _start(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> None:
        """What `start` does on this platform, once the node is known to be stopped."""
        raise self._unsupported("start a node")

    def restart(
        self,
        node: Endpoint,
        *,
        replicaof: Endpoint | None = None,
        overrides: dict[str, str] | None = None,
        safe: bool | None = None,
    ) -> None:
        """Stop (if running) then start: without persistence the node comes back empty."""
        self._restart(node, replicaof, dict(overrides or {}), safe)
        failpoint.changed(f"restarted {node.name}")

    def _restart(
        self,
        node: Endpoint,
        replicaof: Endpoint | None,
        overrides: dict[str, str],
        safe: bool | None,
    ) -> None:
        """What `restart` does on this platform; by default `stop` (if running), then `start`."""
        if self.is_running(node):
            self.stop(node)
        self._start_stopped(node, replicaof, overrides, safe)

    def start_sentinel(self, sentinel: Endpoint) -> None:
        """Start a stopped Sentinel from its own config file (which keeps its state)."""
        raise self._unsupported("start a Sentinel")

    def log_tail(self, node: Endpoint, lines: int = 200) -> list[str] | None:
        """The last `lines` lines of the node's log (None: it has written none yet)."""
        raise self._unsupported("read a node's log")

    def mem_available(self, node: Endpoint) -> int | None:
        """Bytes of memory available on the node's host (None: the host does not say)."""
        raise self._unsupported("read a host's free memory")

    def _unsupported(self, what: str) -> ControlError:
        return ControlError(
            f"control backend {self.backend!r} cannot {what} (not supported yet); "
            "do this step by hand as the runbook describes, then continue",
            code=2,
        )


def backend_name(inv: Inventory, node: Endpoint) -> str:
    """A node's own `control.backend` wins over the inventory-wide one (default: lab)."""
    return str(node.control.get("backend") or inv.control.get("backend") or "lab")


def starts_safely(inv: Inventory, node: Endpoint) -> bool:
    """Whether the node starts through redis_ha.safestart: its own `control.safestart`, else the
    inventory's (default: no)."""
    own = node.control.get("safestart")
    return bool(inv.control.get("safestart") if own is None else own)


def server_words(replicaof: Endpoint | None, overrides: dict[str, str]) -> list[str]:
    """The extra redis-server arguments a start needs: `--replicaof h p`, then `--key value`."""
    words: list[str] = []
    if replicaof is not None:
        host, port = replicaof.announced
        words += ["--replicaof", host, str(port)]
    for key, value in overrides.items():
        words += [f"--{key}", value]
    return words


def wait_until(done: Callable[[], bool], timeout: float, failure: str) -> None:
    """Poll `done` until it holds; after `timeout` seconds, a ControlError saying `failure`.

    Remote backends return from start/stop only once the node answers (or is gone), whatever
    the platform's command said.
    """
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ControlError(failure, code=3)
        time.sleep(0.05)
