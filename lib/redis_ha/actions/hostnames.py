"""Checks about names: a Sentinel that cannot resolve a node (redis/redis#11241, unresolved.py)."""

from __future__ import annotations

from redis_ha import unresolved
from redis_ha.actions.registry import Outcome, check
from redis_ha.view import View


@check("sentinel.resolves_nodes")
def resolves_nodes(view: View, node: str | None = None) -> Outcome:
    """No Sentinel logged, in the last minute, that it cannot resolve a node's name (but `node`,
    which a rebuild is about to bring back): a switchover or a rebuild of another node would
    take away more while Sentinel cannot fail over."""
    if node is not None:
        view.inv.node(node)  # an unknown name is an InventoryError, as in every check
    ok, message = unresolved.check(view.inv, allow=node)
    return Outcome(ok, message)
