"""The health verdict as a pure function of facts (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

from redis_ha import inventory
from redis_ha.facts import ClusterFacts
from redis_ha.health import DEGRADED, DOWN, HEALTHY, assess, authoritative_primary
from redis_ha.lab.ports import write_lab_inventory

from .factories import healthy


def inv(tmp_path: Path) -> inventory.Inventory:
    return inventory.load(write_lab_inventory(tmp_path))


def facts_for(i: inventory.Inventory, primary: str = "redis-1") -> ClusterFacts:
    return healthy(i, primary)


def test_healthy(tmp_path: Path) -> None:
    i = inv(tmp_path)
    h = assess(i, facts_for(i))
    assert h.level == HEALTHY and h.primary == "redis-1" and h.problems == []
    assert h.exit_code == 0 and h.quorum_ok and not h.split_brain


def test_replica_down_is_degraded(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    f.nodes[2].up, f.nodes[2].error = False, "connection refused"
    h = assess(i, f)
    assert h.level == DEGRADED and h.exit_code == 1
    assert any("redis-3" in p and "down" in p for p in h.problems)
    assert not h.split_brain


def test_both_replicas_gone_means_writes_refused(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    for n in f.nodes[1:]:
        n.up = False
    h = assess(i, f)
    assert h.level == DOWN
    assert any("refuses writes" in p for p in h.problems)


def test_primary_down_is_down(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    f.nodes[0].up = False
    h = assess(i, f)
    assert h.level == DOWN and h.primary is None and h.exit_code == 2


def test_two_primaries_is_split_brain(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    f.nodes[1].role, f.nodes[1].replicating_from, f.nodes[1].link_up = "master", None, None
    h = assess(i, f)
    assert h.split_brain
    assert any("more than one node says it is primary" in p for p in h.problems)


def test_disagreeing_sentinel(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    f.sentinels[2].primary = i.node("redis-2").address
    f.sentinels[2].primary_name = "redis-2"
    h = assess(i, f)
    assert not h.sentinels_agree and h.level == DEGRADED
    assert h.primary == "redis-1"  # two of three still agree
    assert any("sentinel-3 says redis-2" in p for p in h.problems)


def test_no_sentinel_majority(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    f.sentinels[1].up = False
    f.sentinels[2].primary = i.node("redis-2").address
    addr, votes = authoritative_primary(f)
    assert addr is None and votes == 1
    h = assess(i, f)
    assert h.level == DOWN


def test_majority_breaks_ties_by_epoch_only_with_majority(tmp_path: Path) -> None:
    i = inv(tmp_path)
    f = facts_for(i)
    f.sentinels[0].primary = i.node("redis-2").address
    f.sentinels[0].config_epoch = 9
    addr, votes = authoritative_primary(f)
    assert addr == i.node("redis-1").address and votes == 2
