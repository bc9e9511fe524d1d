"""The common checks as pure functions of one view, from data (no cluster)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from redis_ha import inventory
from redis_ha.actions import registry

from .factories import lab_inv, view

registry.load_all()


@pytest.fixture
def inv(tmp_path: Path) -> inventory.Inventory:
    return lab_inv(tmp_path)


def check(inv: inventory.Inventory, name: str, args: dict[str, Any] | None = None, **over: Any):
    return registry.CHECKS[name].fn(view(inv, **over), **(args or {}))


CASES = [
    # (check, args, facts patch, ok, words in the message)
    ("cluster.healthy", {}, {}, True, "healthy: primary redis-1, 2 replica(s) in sync"),
    ("cluster.healthy", {}, {"redis_3": {"up": False, "error": "refused"}}, False, "degraded"),
    ("cluster.quorum_ok", {}, {}, True, "quorum OK: 3 of 3"),
    (
        "cluster.quorum_ok",
        {},
        {"sentinel_1": {"up": False}, "sentinel_2": {"up": False}},
        False,
        "no quorum: 1 of 3 Sentinels up",
    ),
    ("cluster.sentinels_agree", {}, {}, True, "all 3 Sentinels name redis-1"),
    (
        "cluster.sentinels_agree",
        {},
        {"sentinel_2": {"primary_name": "redis-2"}},
        False,
        "Sentinels disagree: sentinel-1 says redis-1, sentinel-2 says redis-2",
    ),
    ("cluster.no_failover_in_progress", {}, {}, True, "no failover in progress"),
    (
        "cluster.no_failover_in_progress",
        {},
        {"sentinel_3": {"failover_state": "wait_promotion"}},
        False,
        "sentinel-3: wait_promotion",
    ),
    ("cluster.one_node_claims_primary", {}, {}, True, "one primary: redis-1"),
    (
        "cluster.one_node_claims_primary",
        {},
        {"redis_2": {"role": "master", "replicating_from": None}},
        False,
        "2 nodes say they are primary: redis-1, redis-2",
    ),
    ("cluster.all_replicas_in_sync", {}, {}, True, "redis-2, redis-3 in sync with redis-1"),
    (
        "cluster.all_replicas_in_sync",
        {},
        {"redis_2": {"link_up": False}},
        False,
        "redis-2: replication link to redis-1 is down",
    ),
    ("cluster.writes_accepted", {}, {}, True, "skipped: dry run"),
    ("node.up", {"node": "redis-2"}, {}, True, "redis-2 is up (replica)"),
    ("node.up", {"node": "redis-2"}, {"redis_2": {"up": False, "error": "x"}}, False, "down: x"),
    ("node.is_replica", {"node": "redis-1"}, {}, False, "redis-1 is a master, not a replica"),
    ("node.in_sync", {"node": "redis-2"}, {}, True, "redis-2 is in sync with redis-1"),
    ("node.in_sync", {"node": "redis-1"}, {}, False, "redis-1 is the primary, not a replica"),
    (
        "node.in_sync",
        {"node": "redis-3"},
        {"redis_3": {"sync_in_progress": True}},
        False,
        "full sync from redis-1 in progress",
    ),
    ("node.not_primary", {"node": "redis-1"}, {}, False, "redis-1 is the current primary"),
    ("node.not_primary", {"node": "redis-3"}, {}, True, "redis-3 is not a primary"),
]


@pytest.mark.parametrize(("name", "args", "over", "ok", "words"), CASES)
def test_check_from_data(inv, name, args, over, ok, words) -> None:
    out = check(inv, name, args, **over)
    assert out.ok is ok, out.message
    assert words in out.message


def test_unknown_node_names_the_known_ones(inv) -> None:
    out = check(inv, "node.up", {"node": "redis-9"})  # a failed check, never a traceback
    assert not out.ok
    assert re.search("unknown node 'redis-9'.*redis-1, redis-2, redis-3", out.message)


def test_no_primary_is_said_in_words(inv) -> None:
    down = {f"sentinel_{i}": {"up": False} for i in (1, 2, 3)}
    down["redis_1"] = {"up": False, "error": "refused"}
    out = check(inv, "node.in_sync", {"node": "redis-2"}, **down)
    assert not out.ok and out.message.startswith("no usable primary")
