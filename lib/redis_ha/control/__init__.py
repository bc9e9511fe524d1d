"""Process control backends: `for_node(inv, node)` picks the one the inventory names."""

from __future__ import annotations

from redis_ha.control.base import Control, ControlError, backend_name
from redis_ha.inventory import Endpoint, Inventory

__all__ = ["Control", "ControlError", "backend_name", "for_node"]


def for_node(inv: Inventory, node: Endpoint) -> Control:
    """The control backend for one node (node-level `control.backend` overrides the inventory)."""
    name = backend_name(inv, node)
    if name == "local":
        from redis_ha.control.local import LocalControl

        return LocalControl(inv)
    if name == "ssh":
        from redis_ha.control.ssh import SshControl

        return SshControl(inv)
    if name == "railway":
        from redis_ha.control.railway import RailwayControl

        return RailwayControl(inv)
    if name == "docker":
        from redis_ha.control.docker import DockerControl

        return DockerControl(inv)
    raise ControlError(f"unknown control backend {name!r} for {node.name}")
