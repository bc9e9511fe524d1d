"""One look at the cluster per round: every guard of a step, or every verification of one poll,
judges the same facts.

Gathering facts takes a pipelined round trip to every node and Sentinel; before this, each check
gathered its own, so the guards of one step could judge different clusters. The runner takes one
`View` per guard round and per verify poll and hands it to every check and plan of that round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha.errors import ClusterError
from redis_ha.facts import ClusterFacts, NodeFacts, SentinelFacts
from redis_ha.health import Health
from redis_ha.inventory import Inventory


@dataclass(frozen=True)
class View:
    """Inventory, facts and verdict of one moment; `dry_run` tells checks not to write probes."""

    inv: Inventory
    facts: ClusterFacts
    health: Health
    taken_at: float = field(default_factory=time.time)
    dry_run: bool = False

    def node(self, name: str) -> NodeFacts:
        """Facts of one node by its inventory name (an unknown name lists the known ones)."""
        self.inv.node(name)
        return self.facts.node(name)

    def sentinel(self, name: str) -> SentinelFacts:
        self.inv.sentinel(name)
        return self.facts.sentinel(name)

    def primary(self) -> NodeFacts:
        """The usable primary (named by a Sentinel majority), or a ClusterError saying why not."""
        h = self.health
        if h.primary is None:
            why = "; ".join(h.problems) or "no Sentinel majority names a primary"
            raise ClusterError(f"no usable primary: {why}")
        return self.facts.node(h.primary)


def take(inv: Inventory, *, dry_run: bool = False, detail: bool = True) -> View:
    """Gather every node and Sentinel once (in parallel) and judge it: the one "look and
    judge" of the runner, `status`, `health`, `watch` and the exporter. `detail=False` skips
    each Sentinel's replica and Sentinel lists (the verdict does not need them)."""
    f = factsmod.gather(inv, detail=detail)
    return View(inv, f, healthmod.assess(inv, f), dry_run=dry_run)


def of(inv: Inventory, facts: ClusterFacts, *, dry_run: bool = False) -> View:
    """A view from facts in hand (tests build them from data)."""
    return View(inv, facts, healthmod.assess(inv, facts), dry_run=dry_run)
