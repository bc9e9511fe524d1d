"""Checks about names: a Sentinel that cannot resolve a node (redis/redis#11241, unresolved.py)."""

from __future__ import annotations

from redis_ha import unresolved
from redis_ha.actions.registry import Outcome, check
from redis_ha.view import View


@check("sentinel.resolves_nodes")
def resolves_nodes(view: View) -> Outcome:
    """No Sentinel logged, in the last minute, that it cannot resolve a node's name: a switchover
    or a rebuild then would take away more while Sentinel cannot fail over."""
    ok, message = unresolved.check(view.inv)
    return Outcome(ok, message)
