"""Process control backends, registered by the names an inventory gives as `control.backend`.

`for_node(inv, node)` builds the backend a node names. A backend is registered as
"module:Class" and imported on first use: a lab run loads no ssh library, and the inventory
validates its names against `names()` without importing any backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from redis_ha.control.base import Control, ControlError, backend_name, starts_safely

if TYPE_CHECKING:
    from redis_ha.inventory import Endpoint, Inventory

__all__ = [
    "Control",
    "ControlError",
    "backend_class",
    "backend_name",
    "backends",
    "canonical",
    "for_node",
    "names",
    "register",
    "starts_safely",
]

_BACKENDS: dict[str, str] = {}  # name -> "module:Class"
_ALIASES: dict[str, str] = {}  # alias -> name


def register(name: str, target: str, *, aliases: tuple[str, ...] = ()) -> None:
    """Make `target` ("package.module:Class") the backend called `name` (and its aliases)."""
    _BACKENDS[name] = target
    for alias in aliases:
        _ALIASES[alias] = name


# `local` was the lab backend's first name: inventories written with it keep working.
register("lab", "redis_ha.control.lab:LabProcesses", aliases=("local",))
register("ssh", "redis_ha.control.ssh:SshControl")
register("docker", "redis_ha.control.docker:DockerControl")
register("railway", "redis_ha.control.railway:RailwayControl")


def backends() -> tuple[str, ...]:
    """The registered backends by their own names (no aliases)."""
    return tuple(sorted(_BACKENDS))


def names() -> tuple[str, ...]:
    """Every name an inventory may give as `control.backend`, aliases included."""
    return tuple(sorted({*_BACKENDS, *_ALIASES}))


def canonical(name: str) -> str:
    """The backend `name` stands for (an alias resolved), or one line naming the known ones."""
    found = _ALIASES.get(name, name)
    if found not in _BACKENDS:
        raise ControlError(
            f"unknown control backend {name!r} (known: {', '.join(names())})", code=2
        )
    return found


def backend_class(name: str) -> type[Control]:
    """The class registered as `name`, imported now."""
    module, _, attr = _BACKENDS[canonical(name)].partition(":")
    cls: type[Control] = getattr(importlib.import_module(module), attr)
    return cls


def for_node(inv: Inventory, node: Endpoint) -> Control:
    """The control backend for one node (node-level `control.backend` overrides the inventory).

    A placeholder backend is refused here, before any operation, in one line.
    """
    name = backend_name(inv, node)
    try:
        cls = backend_class(name)
    except ControlError as e:
        raise ControlError(f"{node.name}: {e}", code=2) from None
    if not cls.implemented:
        raise ControlError(
            f"{node.name}: control backend {cls.backend!r} is not implemented yet; do this step "
            "by hand as the runbook describes, then continue",
            code=2,
        )
    return cls(inv)
