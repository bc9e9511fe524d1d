"""Facts and views built from data, for the pure tests of verdicts, checks and plans.

One healthy cluster (the lab inventory's names: redis-1 primary, redis-2/3 in-sync replicas,
three agreeing Sentinels with quorum) that each test bends to the case it is about, instead of
one private builder per test file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis_ha import inventory
from redis_ha import view as viewmod
from redis_ha.facts import ClusterFacts, NodeFacts, ReplicaLink, SentinelFacts
from redis_ha.lab.ports import lab_inventory_dict
from redis_ha.view import View

GB = 1024**3


def lab_inv(tmp_path: Path) -> inventory.Inventory:
    """The lab inventory's shape (names, settings, password source), without writing ports."""
    return inventory.from_dict(lab_inventory_dict(tmp_path), tmp_path / "inventory.yaml")


def healthy(
    inv: inventory.Inventory, primary: str = "redis-1", **over: dict[str, Any]
) -> ClusterFacts:
    """A healthy cluster with `primary`; `over` patches nodes or Sentinels by name
    (`redis_2={"up": False}`, `sentinel_1={"primary_name": "redis-2"}`)."""
    p = inv.node(primary)
    nodes = []
    for n in inv.nodes:
        if n.name == primary:
            links = [ReplicaLink(o.address, o.name, "online", 1000, 0) for o in inv.nodes if o != n]
            nodes.append(
                NodeFacts(
                    n.name,
                    n.address,
                    True,
                    role="master",
                    offset=1000,
                    replicas=links,
                    used_memory=100 * 1024 * 1024,
                    total_memory=16 * GB,
                    replica_priority=100,
                )
            )
        else:
            nodes.append(
                NodeFacts(
                    n.name,
                    n.address,
                    True,
                    role="replica",
                    replicating_from=primary,
                    link_up=True,
                    offset=1000,
                    lag_bytes=0,
                    replica_priority=100,
                )
            )
    sentinels = [
        SentinelFacts(
            s.name,
            s.address,
            True,
            primary=p.address,
            primary_name=primary,
            flags=["master"],
            config_epoch=1,
            failover_state="none",
            quorum_ok=True,
            quorum_msg="OK",
        )
        for s in inv.sentinels
    ]
    for obj in (*nodes, *sentinels):
        for k, v in over.get(obj.name.replace("-", "_"), {}).items():
            setattr(obj, k, v)
    return ClusterFacts(str(inv.path), inv.master_name, 0.0, 1, nodes, sentinels)


def view(
    inv: inventory.Inventory, facts: ClusterFacts | None = None, **over: dict[str, Any]
) -> View:
    """The view of `facts` (default: `healthy(inv, **over)`), as the runner hands it to checks."""
    return viewmod.of(inv, facts if facts is not None else healthy(inv, **over), dry_run=True)
