"""Containers, one per node: docker stop / start / restart / pause / logs through the engine API.

A node's container is `control.container` (default: the node's name). Its command is
`python -m redis_ha.dockerlab.entry` (the lab's image, or any image that has redis-server and this
package): a start writes what it needs (replicaof, overrides, safestart) into the stopped
container first, so they hold from the process's first instant, as the contract requires.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
from typing import Any

from redis_ha.control.base import Control, ControlError, server_words, wait_until
from redis_ha.dockerlab import engine
from redis_ha.dockerlab.entry import START
from redis_ha.inventory import Endpoint, Inventory

RUNNING = ("running", "paused", "restarting")


def container_name(node: Endpoint) -> str:
    """The container that runs this node."""
    return str(node.control.get("container") or node.name)


class DockerControl(Control):
    """Stop, start, pause and read the logs of the containers that run the nodes."""

    backend = "docker"

    def __init__(self, inv: Inventory) -> None:
        super().__init__(inv)
        self._docker: Any = None

    def _container(self, node: Endpoint) -> Any:
        if self._docker is None:
            try:
                self._docker = engine.client()
            except engine.EngineError as e:
                raise ControlError(f"{node.name}: {e}", code=3) from None
        import docker.errors

        name = container_name(node)
        try:
            return self._docker.containers.get(name)
        except docker.errors.NotFound:
            raise ControlError(
                f"{node.name}: no container named {name!r} on this Docker engine", code=2
            ) from None

    def _status(self, node: Endpoint) -> tuple[Any, str]:
        c = self._container(node)
        c.reload()
        return c, str(c.status)

    def is_running(self, node: Endpoint) -> bool:
        return self._status(node)[1] in RUNNING

    def stop(self, node: Endpoint) -> None:
        c, status = self._status(node)
        if status == "paused":
            c.unpause()
        if status in RUNNING:
            c.stop(timeout=10)
            c.wait(timeout=30)

    def _start(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> None:
        c = self._container(node)
        start = {"args": server_words(replicaof, overrides), "safe": safe}
        c.put_archive(str(START.parent), _tar(START.name, json.dumps(start).encode()))
        c.start()
        self._wait_answers(c, node, 60.0 if safe else 15.0)

    def _wait_answers(self, c: Any, node: Endpoint, timeout: float) -> None:
        def answers() -> bool:
            c.reload()
            if c.status == "exited":
                tail = self.log_tail(node, 1) or ["(no log)"]
                raise ControlError(f"{node.name}: its container exited at start: {tail[-1]}")
            try:
                with socket.create_connection((node.host, node.port), timeout=0.3):
                    return True
            except OSError:
                return False

        wait_until(
            answers, timeout, f"{node.name} did not answer on {node.address} in {timeout:.0f} s"
        )

    def pause(self, node: Endpoint) -> None:
        """Freeze the node (cgroup freezer): a hung host, as SIGSTOP is in the process lab."""
        c, status = self._status(node)
        if status != "paused":
            c.pause()

    def unpause(self, node: Endpoint) -> None:
        c, status = self._status(node)
        if status == "paused":
            c.unpause()

    def log_tail(self, node: Endpoint, lines: int = 200) -> list[str] | None:
        if lines <= 0:
            self._container(node)  # an unknown container is still an error
            return []
        raw = self._container(node).logs(tail=lines)
        text = raw.decode(errors="replace").splitlines()
        return text[-lines:] if text else None

    def mem_available(self, node: Endpoint) -> int | None:
        """Containers share the engine host's memory; the engine API does not say how much is
        free, so this is unknown (the procedures then skip the memory check)."""
        self._container(node)
        return None


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
