"""Monitoring as pure functions: heartbeat arithmetic, metrics, capacity, cost, UNKNOWN."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from redis_ha import capacity, cost, heartbeat, inventory, metrics, watch
from redis_ha.errors import InventoryError
from redis_ha.facts import NodeFacts
from redis_ha.health import UNKNOWN, assess, cannot_judge
from redis_ha.lab.ports import lab_inventory_dict
from tests.conftest import ROOT, run_invoke
from tests.factories import healthy, lab_inv

# --- heartbeat -------------------------------------------------------------------------------


def test_beat_value_parses_and_rejects_foreign_values() -> None:
    assert heartbeat.parse("1796279036517313 23514e5a") == (1796279036517313, "23514e5a")
    assert heartbeat.parse(b"17 abc") == (17, "abc")
    assert heartbeat.parse(None) is None
    assert heartbeat.parse("not-a-stamp x") is None


@pytest.mark.parametrize(
    ("stamp", "written", "t_write", "t_read", "expected"),
    [
        (1_000_000, 1_000_000, 10.0, 10.0003, 0.3),  # caught up: the read came 0.3 ms later
        (1_000_000, 3_500_000, 10.0, 10.1, 2600.0),  # holds a beat 2.5 s older than ours
        (1_000_000, 1_000_000, 10.0, 9.99999, 0.0),  # midpoints crossed: never negative
        (2_000_000, 1_000_000, 10.0, 10.5, 0.0),  # a newer beat from another writer
    ],
)
def test_age_is_primary_clock_difference_plus_own_monotonic_interval(
    stamp: int, written: int, t_write: float, t_read: float, expected: float
) -> None:
    assert heartbeat.age_ms(stamp, written, t_write, t_read) == pytest.approx(expected)


def test_offsets_fallback_says_so() -> None:
    n = NodeFacts("redis-2", "x:1", True, role="replica", link_up=True, lag_bytes=0, lag_ms=0)
    r = heartbeat.offsets_lag(n, "writes paused")
    assert (r.lag_ms, r.source) == (0.0, heartbeat.OFFSETS)
    assert r.note and r.note.startswith("writes paused: lag from offsets")
    behind = NodeFacts("redis-3", "x:2", True, role="replica", link_up=True, lag_bytes=900)
    behind.lag_ms = 1000
    assert heartbeat.offsets_lag(behind, "heartbeat off").lag_ms == 1000.0


def test_heartbeat_key_is_the_tools_own() -> None:
    i = inventory.from_dict(lab_inventory_dict(Path("/tmp/x")), Path("/tmp/x/inv.yaml"))
    assert heartbeat.key(i) == "redis-ha-runbooks:heartbeat:mymaster"


def test_no_primary_writes_nothing(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    for s in f.sentinels:
        s.up = False
    f.nodes[0].up = False
    h = assess(i, f)
    assert h.primary is None
    beat = heartbeat.Heartbeat(i).measure(f, h)  # no connection is made without a primary
    assert beat.state == heartbeat.NO_PRIMARY and beat.replicas == {}


# --- UNKNOWN ---------------------------------------------------------------------------------


def test_unknown_when_every_node_refuses_the_credentials(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    for n in f.nodes:
        n.up, n.error, n.denied = False, "authentication failed (wrong password?)", True
    h = assess(i, f)
    assert h.level == UNKNOWN and h.exit_code == 3
    assert "down" not in " ".join(h.problems)
    assert "no node accepted the tool's credentials" in h.problems[0]


def test_down_nodes_without_refusals_are_down_not_unknown(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    for n in f.nodes:
        n.up, n.error = False, "connection refused (not running?)"
    assert cannot_judge(f) is None
    assert assess(i, f).level == "down"
    f.nodes[1].up, f.nodes[1].denied = False, True  # one refusal among dead nodes: cannot judge
    assert assess(i, f).level == UNKNOWN


def test_one_readable_node_is_enough_to_judge(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    for n in f.nodes[1:]:
        n.up, n.denied, n.error = False, True, "authentication failed (wrong password?)"
    assert cannot_judge(f) is None and assess(i, f).level != UNKNOWN


def test_credential_source_names_the_variable_or_file(tmp_path: Path, monkeypatch) -> None:
    d = lab_inventory_dict(tmp_path)
    d["auth"] = {"password_env": "REDIS_HA_T_PW", "password_file": "pw"}
    i = inventory.from_dict(d, tmp_path / "inv.yaml")
    monkeypatch.delenv("REDIS_HA_T_PW", raising=False)
    assert f"the password file {tmp_path / 'pw'}" in i.credential_source()
    assert "REDIS_HA_T_PW is not set" in i.credential_source()
    monkeypatch.setenv("REDIS_HA_T_PW", "secret-value")
    src = i.credential_source()
    assert src.startswith("the password in $REDIS_HA_T_PW") and "secret-value" not in src
    assert 'ACL user "default"' in src


# --- metrics ---------------------------------------------------------------------------------


def _names(rows: list[metrics.Sample]) -> set[str]:
    return {r[0] for r in rows}


def test_samples_are_in_the_catalog_and_expose_cleanly(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    for n in f.nodes:
        n.stats = {"keyspace_hits": 90.0, "keyspace_misses": 10.0, "connected_clients": 4.0}
    h = assess(i, f)
    beat = heartbeat.Beat(heartbeat.OK, "written", primary="redis-1")
    beat.replicas = {
        "redis-2": heartbeat.ReplicaLag("redis-2", 0.31, heartbeat.HEARTBEAT, caught_up=True),
        "redis-3": heartbeat.ReplicaLag("redis-3", 0.0, heartbeat.OFFSETS),
    }
    rows = metrics.samples(i, f, h, beat=beat, event_counts={"+switch-master": 3})
    assert _names(rows) <= set(metrics.BY_NAME)
    got = {(r[0], r[1].get("node")): r[2] for r in rows}
    assert got["redis_ha_replication_lag_milliseconds", "redis-2"] == 0.31
    # an offsets figure is not a millisecond measurement: never exported as one
    assert ("redis_ha_replication_lag_milliseconds", "redis-3") not in got
    assert got["redis_ha_health_level", None] == 0.0
    assert got["redis_ha_writes_paused", None] == 0.0
    assert got["redis_keyspace_hits_total", "redis-1"] == 90.0
    reg = metrics.CollectorRegistry(auto_describe=False)
    reg.register(metrics._Rows(rows))
    from prometheus_client import generate_latest

    text = generate_latest(reg).decode()
    fams = {m.name: m for m in text_string_to_metric_families(text)}
    assert fams["redis_keyspace_hits"].type == "counter"  # exposed as redis_keyspace_hits_total
    assert "redis_keyspace_hits_total{" in text
    ev = [s for s in fams["redis_ha_sentinel_events"].samples if s.name.endswith("_total")]
    assert ev[0].labels == {"event": "+switch-master"} and ev[0].value == 3


def test_unknown_exports_no_verdict_it_cannot_make(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    for n in f.nodes:
        n.up, n.denied, n.error = False, True, "authentication failed (wrong password?)"
    rows = metrics.samples(i, f, assess(i, f))
    names = _names(rows)
    assert ("redis_ha_health_level", {}, 3.0) in rows
    for s in f.sentinels:  # the Sentinels refuse the same credentials
        s.up, s.error = False, "authentication failed (wrong password?)"
    rows = metrics.samples(i, f, assess(i, f))
    names = _names(rows)
    verdicts = ("redis_ha_primary_up", "redis_ha_split_brain", "redis_ha_quorum_ok")
    for absent in (*verdicts, "redis_ha_sentinels_up", "redis_ha_sentinel_up"):
        assert absent not in names
    assert {r[2] for r in rows if r[0] == "redis_ha_node_denied"} == {1.0}


def test_paused_writes_are_exported(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    beat = heartbeat.Beat(heartbeat.PAUSED, "writes paused: ...", primary="redis-1")
    rows = metrics.samples(i, f, assess(i, f), beat=beat)
    assert ("redis_ha_writes_paused", {}, 1.0) in rows
    assert ("redis_ha_heartbeat_ok", {}, 0.0) in rows


def test_an_unlisted_metric_is_refused() -> None:
    with pytest.raises(KeyError, match="not in metrics.CATALOG"):
        metrics.families([("redis_made_up", {}, 1.0)])


# --- watch -----------------------------------------------------------------------------------


def test_hit_rate_is_per_interval_once_there_is_a_previous_frame() -> None:
    n = NodeFacts("redis-1", "x:1", True, stats={"keyspace_hits": 190.0, "keyspace_misses": 10.0})
    assert watch.hit_rate(n, 100.0, {}) == (0.95, "since start")
    prev = {"redis-1": (99.0, 100.0, 0.0)}  # since then: 90 hits, 10 misses
    assert watch.hit_rate(n, 100.0, prev) == (0.9, "last 1.0 s")
    restarted = {"redis-1": (99.0, 500.0, 0.0)}  # counters went down: the node restarted
    assert watch.hit_rate(n, 100.0, restarted)[1] == "since start"


# --- capacity --------------------------------------------------------------------------------


def _cap_facts(tmp_path: Path, used: int, maxmemory: int, offsets: tuple[int, int]):
    i = lab_inv(tmp_path)
    before, after = healthy(i), healthy(i)
    after.taken_at = before.taken_at + 2.0
    for f, off in ((before, offsets[0]), (after, offsets[1])):
        for n in f.nodes:
            n.offset = off
            n.used_memory, n.maxmemory = used, maxmemory
            n.stats = {
                "used_memory_peak": float(used),
                "repl_backlog_size": float(2**20),
                "evicted_keys": 0.0,
                "keyspace_hits": 80.0,
                "keyspace_misses": 20.0,
                "mem_fragmentation_ratio": 1.1,
            }
    return i, before, after


def test_backlog_against_write_rate(tmp_path: Path) -> None:
    # 4 MB written in 2 s = 2 MB/s; a 1 MB backlog holds 0.5 s: a 10 s disconnect -> full resync
    i, before, after = _cap_facts(tmp_path, 100 * 2**20, 2**30, (0, 4 * 2**20))
    cap = capacity.assess(i, before, after, disconnect_s=10)
    p = next(n for n in cap.nodes if n.role == "master")
    assert p.write_rate_bps == 2 * 2**20
    assert p.backlog_covers_s == 0.5 and p.full_resync_after_disconnect is True
    assert p.hit_rate == 0.8 and p.utilization == pytest.approx(100 / 1024, abs=1e-4)
    assert any("repl-backlog-size to at least 40 MB" in r for r in cap.recommendations)
    replica = next(n for n in cap.nodes if n.role == "replica")
    assert replica.write_rate_bps is None  # only the primary's offset is the write rate


def test_the_80_percent_rule(tmp_path: Path) -> None:
    i, before, after = _cap_facts(tmp_path, 300 * 2**20, 2**30, (0, 0))
    recs = capacity.assess(i, before, after).recommendations
    # peak 300 MB / 0.8 = 375 MB -> 384 MB (64 MB steps), below the 1 GB limit
    assert any("maxmemory 384 MB would keep the peak under 80%" in r for r in recs), recs
    i, before, after = _cap_facts(tmp_path, 900 * 2**20, 2**30, (0, 0))
    recs = capacity.assess(i, before, after).recommendations
    assert any(r.startswith("memory pressure: a node uses 88% of maxmemory 1.00 GB") for r in recs)
    assert capacity.recommended_maxmemory(0) == 64 * 2**20


# --- cost ------------------------------------------------------------------------------------

KNOWN = cost.PriceTable(
    provider="test",
    memory_gb_month=10.0,
    vcpu_month=20.0,
    volume_gb_month=0.25,
    egress_gb=0.1,
    plans={"pro": 20.0, "none": 0.0},
    source="test table",
    retrieved="2026-12-01",
)


def _sized(tmp_path: Path, **cost_section) -> inventory.Inventory:
    d = lab_inventory_dict(tmp_path)
    for n in d["nodes"]:
        n["size"] = {"memory_gb": 0.5, "vcpu": 0.25, "volume_gb": 2}
    for s in d["sentinels"]:
        s["size"] = {"memory_gb": 0.1, "vcpu": 0.05}
    d["cost"] = cost_section
    p = tmp_path / "inv.yaml"
    p.write_text(yaml.safe_dump(d))
    return inventory.load(p)


def test_cost_matches_a_hand_computation(tmp_path: Path) -> None:
    i = _sized(tmp_path, plan="pro", budget_usd=60, egress_gb=10, expected_usd=[30, 45])
    est = cost.estimate(i, KNOWN)
    # node: 0.5*10 + 0.25*20 + 2*0.25 = 10.50; x3 = 31.50
    # sentinel: 0.1*10 + 0.05*20 = 2.00; x3 = 6.00; egress 10*0.1 = 1.00 -> usage 38.50
    assert [s.monthly_usd for s in est.services] == [10.5] * 3 + [2.0] * 3
    assert est.usage_usd == 38.5 and est.monthly_usd == 38.5
    assert est.within_budget is True and est.to_dict()["headroom_usd"] == 21.5
    assert est.unsized == ["legacy"]


def test_the_plan_fee_is_a_minimum(tmp_path: Path) -> None:
    d = _sized(tmp_path, plan="pro", budget_usd=10)
    small = cost.estimate(
        d, cost.PriceTable(**{**KNOWN.__dict__, "memory_gb_month": 1.0, "vcpu_month": 1.0})
    )
    # usage: 3*(0.5+0.25+0.5) + 3*(0.1+0.05) = 4.2 -> the $20 plan fee is the bill
    assert small.usage_usd == 4.2 and small.monthly_usd == 20.0 and small.within_budget is False


def test_the_railway_table_documents_its_source_and_date() -> None:
    assert cost.RAILWAY.retrieved == "2026-12-03"
    assert "docs.railway" in cost.RAILWAY.source
    assert (cost.RAILWAY.memory_gb_month, cost.RAILWAY.vcpu_month) == (10.0, 20.0)


def test_cost_problems_are_listed_with_their_paths(tmp_path: Path) -> None:
    i = _sized(tmp_path, plan="platinum", budget_usd="lots", colour="red")
    with pytest.raises(InventoryError) as e:
        cost.estimate(i)
    text = str(e.value)
    assert "cost.plan: must be one of" in text
    assert "cost.budget_usd: must be a number" in text
    assert "cost.colour: unknown field" in text
    bare = inventory.load(_write(tmp_path / "b", lab_inventory_dict(tmp_path / "b")))
    with pytest.raises(InventoryError, match="no service has a size"):
        cost.estimate(bare)


def _write(d: Path, data: dict) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "inv.yaml").write_text(yaml.safe_dump(data))
    return d / "inv.yaml"


def test_record_keeps_one_row_per_week(tmp_path: Path) -> None:
    i = _sized(tmp_path, plan="pro", budget_usd=60)
    est = cost.estimate(i, KNOWN)
    path = tmp_path / "home" / cost.HISTORY_FILE
    monday = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    assert cost.record(i, est, path, monday) == ("2026-W49", False)
    assert cost.record(i, est, path, monday + dt.timedelta(days=3)) == ("2026-W49", True)
    assert cost.record(i, est, path, monday + dt.timedelta(days=7)) == ("2026-W50", False)
    rows = list(csv.DictReader(path.open()))
    assert [r["week"] for r in rows] == ["2026-W49", "2026-W50"]
    assert rows[0]["monthly_usd"] == "37.50"  # 31.50 + 6.00, no egress
    assert rows[0]["within_budget"] == "true"
    assert rows[0]["recorded_at"] == "2026-12-03T09:00:00+00:00"  # the later record won


# --- the tasks' bad input and the cost task (no cluster needed) --------------------------------


def test_cost_task_matches_the_documented_railway_prices(tmp_path: Path) -> None:
    lab_yaml = ROOT / "inventories" / "lab.yaml"
    r = run_invoke("cost", "--json", inventory=lab_yaml)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    # by hand, $10/GB and $20/vCPU a month: nodes 3 x (0.5*10 + 0.25*20) = 30.00,
    # Sentinels 3 x (0.05*10 + 0.02*20) = 2.70; no egress; above the $5 Hobby fee
    assert d["usage_usd"] == 32.7 and d["monthly_usd"] == 32.7
    assert d["budget_usd"] == 60 and d["within_budget"] is True and d["headroom_usd"] == 27.3
    assert d["prices"]["retrieved"] == "2026-12-03" and d["unsized"] == ["legacy"]
    env = {"REDIS_HA_HOME": str(tmp_path)}
    for replaced in (False, True):
        r = run_invoke("cost", "--record", "--json", inventory=lab_yaml, env=env)
        assert r.returncode == 0, r.stderr
        rec = json.loads(r.stdout)["recorded"]
        assert rec["replaced"] is replaced and rec["path"] == str(tmp_path / cost.HISTORY_FILE)
    rows = list(csv.DictReader((tmp_path / cost.HISTORY_FILE).open()))
    assert len(rows) == 1 and rows[0]["monthly_usd"] == "32.70"
    r = run_invoke("cost", "--record", inventory=lab_yaml, env={"REDIS_HA_HOME": "/proc/nope"})
    assert r.returncode == 1 and "cannot write the cost history" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("watch", "--interval", "0"), "--interval must be more than 0"),
        (("watch", "--interval", "fast"), "--interval must be a float"),
        (("metrics.serve", "--port", "99999"), "--port must be between 1 and 65535"),
        (("metrics.serve", "--port", "http"), "--port must be a whole number"),
        (("capacity", "--window", "-1"), "--window must be more than 0"),
    ],
)
def test_bad_options_are_one_line(args: tuple[str, ...], expect: str) -> None:
    r = run_invoke(*args, inventory=ROOT / "inventories" / "lab.yaml")
    assert r.returncode != 0
    assert expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
