"""Incident triage decisions from facts (pure; data-driven)."""

from __future__ import annotations

from pathlib import Path

from redis_ha import inventory
from redis_ha.health import assess
from redis_ha.lab.ports import write_lab_inventory
from redis_ha.triage import CRITICAL, HIGH, triage

from .test_health_logic import facts_for


def setup(tmp_path: Path):
    i = inventory.load(write_lab_inventory(tmp_path))
    return i, facts_for(i)


def test_healthy_cluster_has_no_findings(tmp_path: Path) -> None:
    i, f = setup(tmp_path)
    assert triage(i, f, assess(i, f)) == []


def test_replica_down_points_to_rebuild(tmp_path: Path) -> None:
    i, f = setup(tmp_path)
    f.nodes[2].up, f.nodes[2].error = False, "connection refused"
    out = triage(i, f, assess(i, f))
    assert [x.runbook for x in out] == ["replica-rebuild"]
    assert out[0].params == {"node": "redis-3"}
    assert out[0].severity == HIGH  # only one in-sync replica left: the last one
    assert out[0].command == "invoke replica.rebuild --node redis-3"


def test_primary_down_with_failover_underway(tmp_path: Path) -> None:
    i, f = setup(tmp_path)
    f.nodes[0].up = False
    f.sentinels[0].flags = ["master", "o_down"]
    f.sentinels[0].failover_state = "wait_promotion"
    out = triage(i, f, assess(i, f))
    assert out[0].severity == CRITICAL and out[0].runbook == "failover-automatic"
    assert "sentinel-1" in out[0].why


def test_primary_down_without_quorum_suggests_rollback(tmp_path: Path) -> None:
    i, f = setup(tmp_path)
    f.nodes[0].up = False
    for s in f.sentinels[1:]:
        s.up = False
    out = triage(i, f, assess(i, f))
    assert out[0].runbook == "rollback"
    assert any("Sentinel(s) down" in x.title for x in out)


def test_split_brain_first(tmp_path: Path) -> None:
    i, f = setup(tmp_path)
    f.nodes[1].role, f.nodes[1].replicating_from = "master", None
    out = triage(i, f, assess(i, f))
    assert out[0].runbook == "split-brain" and out[0].severity == CRITICAL


def test_split_brain_command_reaches_recover(tmp_path: Path) -> None:
    """`detect` exits 1 exactly when there is a split-brain: `detect && recover` never recovers."""
    i, f = setup(tmp_path)
    f.nodes[1].role, f.nodes[1].replicating_from = "master", None
    cmd = triage(i, f, assess(i, f))[0].command or ""
    assert "&&" not in cmd
    assert cmd.startswith("invoke splitbrain.recover --dry-run")


def test_restart_empty_primary_is_critical(tmp_path: Path) -> None:
    i, f = setup(tmp_path)
    f.nodes[0].uptime_s, f.nodes[0].keys = 2, 0
    f.nodes[1].keys = 5000
    out = triage(i, f, assess(i, f))
    assert out[0].runbook == "safe-restart"
    assert "restarted empty" in out[0].title
