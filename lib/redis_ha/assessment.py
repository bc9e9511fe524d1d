"""One assessment for whoever responds (`incident`, its `--json`, a drill's first look): a view
of the cluster and its triage, with a second look when one look cannot tell.

A replica in a full sync, or with its link down, is normal once after a restart and a
full-sync loop when it repeats: only the primary's `sync_full` counter over a few seconds tells
them apart. So when that is what the first look leads with, it looks again and triages the
second look with the first one's facts (`triage.full_sync_loop`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis_ha import view as viewmod
from redis_ha.facts import ClusterFacts
from redis_ha.inventory import Inventory
from redis_ha.triage import Finding, triage

# Long enough for a looping replica to retry (it reconnects within a second) and be cut off
# again on a small dataset; a loop over a dataset that takes longer than this to transfer shows
# as "in a full sync" at each look, and the rounds of `incident` see it repeat.
SECOND_LOOK_S = 3.0
# The first findings a full-sync loop hides behind.
SECOND_LOOK_AFTER = frozenset({"replica-syncing", "replica-detached", "noreplicas"})


@dataclass(frozen=True)
class Assessment:
    view: viewmod.View
    findings: list[Finding]  # most urgent first; never empty unless the facts say nothing
    earlier: ClusterFacts | None = None  # the first look's facts, when a second was taken

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def assess(inv: Inventory, *, second_look_s: float = SECOND_LOOK_S) -> Assessment:
    """Look, triage, and look again `second_look_s` later when a sync loop may hide behind
    the first finding."""
    v = viewmod.take(inv)
    found = triage(inv, v.facts, v.health)
    if second_look_s <= 0 or not found or found[0].diagnosis not in SECOND_LOOK_AFTER:
        return Assessment(v, found)
    time.sleep(second_look_s)
    again = viewmod.take(inv)
    return Assessment(again, triage(inv, again.facts, again.health, v.facts), v.facts)
