"""Replica diagnosis and rebuild guards, decided from data alone (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_ha import diagnose as diag
from redis_ha import inventory
from redis_ha.actions.replica import keys_tolerance, sync_progress
from redis_ha.facts import ClusterFacts, NodeFacts, SentinelFacts
from redis_ha.health import assess
from redis_ha.lab.ports import lab_inventory_dict

GB = 1024**3


@pytest.fixture
def inv(tmp_path: Path) -> inventory.Inventory:
    return inventory.from_dict(lab_inventory_dict(tmp_path), tmp_path / "inventory.yaml")


def _facts(inv: inventory.Inventory, **over: dict) -> ClusterFacts:
    """redis-1 primary, redis-2/3 in-sync replicas, 3 agreeing Sentinels; `over` patches nodes."""
    p = inv.nodes[0]
    nodes = [
        NodeFacts(
            name=p.name,
            address=p.address,
            up=True,
            role="master",
            offset=1000,
            used_memory=100 * 1024 * 1024,
            total_memory=16 * GB,
            replica_priority=100,
        )
    ]
    for n in inv.nodes[1:]:
        nodes.append(
            NodeFacts(
                name=n.name,
                address=n.address,
                up=True,
                role="replica",
                replicating_from=p.name,
                link_up=True,
                offset=1000,
                lag_bytes=0,
                replica_priority=100,
            )
        )
    for nf in nodes:
        for k, v in over.get(nf.name.replace("-", "_"), {}).items():
            setattr(nf, k, v)
    sentinels = [
        SentinelFacts(
            name=s.name,
            address=s.address,
            up=True,
            primary=p.address,
            primary_name=p.name,
            flags=["master"],
            config_epoch=0,
            failover_state="none",
            quorum_ok=True,
        )
        for s in inv.sentinels
    ]
    for sf in sentinels:
        for k, v in over.get(sf.name.replace("-", "_"), {}).items():
            setattr(sf, k, v)
    return ClusterFacts("x", "mymaster", 0.0, 1, nodes, sentinels)


def _run(inv, node="redis-2", ev=None, allow=False, **over):
    f = _facts(inv, **over)
    return diag.diagnose(
        inv, f, assess(inv, f), node, ev or diag.Evidence(), allow_write_outage=allow
    )


def test_healthy_replica_needs_no_rebuild_but_may_be_rebuilt(inv):
    d = _run(inv)
    assert not d.needs_rebuild and not d.refusals
    assert "no sign of trouble" in d.findings[0]
    assert len(d.plan) == 5 and "replica-priority 0" in d.plan[0]


def test_primary_is_refused(inv):
    d = _run(inv, node="redis-1")
    assert d.refusals and "current primary" in d.refusals[0]
    assert d.plan == []


@pytest.mark.parametrize(
    "patch, reason",
    [
        ({"up": False, "error": "connection refused"}, "is down"),
        ({"link_up": False}, "master_link_status down"),
        ({"link_up": False, "sync_in_progress": True}, "full sync"),
        ({"replicating_from": "127.0.0.1:6399"}, "wrong primary"),
        ({"lag_bytes": 200 * 1024 * 1024}, "bytes behind"),
    ],
)
def test_reasons_to_rebuild(inv, patch, reason):
    d = _run(inv, redis_2=patch)
    assert d.needs_rebuild
    assert reason in " ".join(d.findings)
    assert not d.refusals  # redis-3 is still in sync: writes keep flowing


def test_last_in_sync_replica_refused_unless_outage_accepted(inv):
    down = {"up": False, "error": "connection refused"}
    d = _run(inv, redis_3=down)
    assert any("last in-sync replica" in r for r in d.refusals)
    d2 = _run(inv, redis_3=down, allow=True)
    assert not d2.refusals
    assert any("WRITE OUTAGE ACCEPTED" in w for w in d2.warnings)


def test_a_replica_already_out_of_sync_is_not_the_last_one(inv):
    # redis-3 down and redis-2 broken: the primary already refuses writes; the rebuild is the fix.
    d = _run(inv, redis_2={"link_up": False}, redis_3={"up": False, "error": "x"})
    assert not any("last in-sync" in r for r in d.refusals)


def test_failover_in_progress_refused(inv):
    d = _run(inv, sentinel_2={"failover_state": "wait_promotion"})
    assert any("failover is in progress" in r for r in d.refusals)


def test_self_declared_primary_is_split_brain_not_rebuild(inv):
    d = _run(inv, redis_2={"role": "master", "replicating_from": None, "link_up": None})
    assert any("split-brain" in r for r in d.refusals)


def test_headroom():
    p = NodeFacts(name="redis-1", address="a", up=True, used_memory=2 * GB, total_memory=16 * GB)
    ok, msg = diag.headroom(p, diag.Evidence(mem_available=3 * GB, obl_hard=256 * 1024**2))
    assert ok and "enough" in msg
    ok, msg = diag.headroom(p, diag.Evidence(mem_available=2 * GB))
    assert not ok and "NOT enough" in msg
    ok, msg = diag.headroom(p, diag.Evidence())  # falls back to total - used
    assert ok and "other processes not counted" in msg


def test_no_headroom_refuses(inv):
    d = _run(inv, ev=diag.Evidence(mem_available=10 * 1024 * 1024))
    assert any("NOT enough memory" in r for r in d.refusals)


def test_log_findings_need_enough_evidence():
    one_resync = ["* Full resync from master: abc:1"]
    assert diag.log_findings(diag.Evidence(replica_log=one_resync)) == []
    many = diag.log_findings(diag.Evidence(replica_log=one_resync * 4))
    assert many and "sync loop" in many[0] and "4x" in many[0]
    obl = (
        "Client id=7 addr=127.0.0.1:5 ... scheduled to be closed ASAP for overcoming of "
        "output buffer limits."
    )
    out = diag.log_findings(diag.Evidence(primary_log=[obl]))
    assert out and "client-output-buffer-limit" in out[0]
    auth = diag.log_findings(diag.Evidence(replica_log=["# Unable to AUTH to MASTER: -WRONGPASS"]))
    assert auth and "authentication" in auth[0]


def test_leftover_priority_zero_is_warned(inv):
    d = _run(inv, redis_2={"replica_priority": 0})
    assert any("replica-priority 0" in w for w in d.warnings)


@pytest.mark.parametrize(
    "info, expected",
    [
        (
            {"loading": 1, "loading_loaded_bytes": 10, "loading_total_bytes": 100},
            ("loading", 10, 100),
        ),
        (
            {
                "master_sync_in_progress": 1,
                "master_sync_read_bytes": 5,
                "master_sync_total_bytes": -1,
            },
            ("transfer", 5, None),
        ),
        (
            {
                "master_sync_in_progress": 1,
                "master_sync_read_bytes": 5,
                "master_sync_total_bytes": 50,
            },
            ("transfer", 5, 50),
        ),
        ({"master_link_status": "up", "master_sync_in_progress": 0}, ("done", None, None)),
        ({"master_link_status": "down", "master_sync_in_progress": 0}, ("connecting", None, None)),
    ],
)
def test_sync_progress(info, expected):
    assert sync_progress(info) == expected


def test_keys_tolerance_grows_with_write_rate():
    assert keys_tolerance(0, 0.01) == 10
    assert keys_tolerance(1000, 0.01) == 1010


@pytest.mark.parametrize("backend", [None, "ssh", "docker", "railway"])
def test_diagnosis_does_not_need_a_control_backend_that_can_serve_logs(
    tmp_path: Path, backend: str | None
):
    """Logs and host memory are best-effort evidence: the default `lab` backend refuses a
    non-lab inventory, placeholder backends refuse everything, and that must not turn a
    read-only diagnosis into an error."""
    from redis_ha import view
    from redis_ha.actions.replica import diagnosis

    raw = lab_inventory_dict(tmp_path)
    raw["lab"] = False
    if backend is None:
        del raw["control"]  # the default backend: lab
    else:
        raw["control"] = {"backend": backend}
    prod = inventory.from_dict(raw, tmp_path / "inventory.yaml")
    d = diagnosis(view.take(prod), "redis-2")  # nothing runs on these ports
    assert d.node == "redis-2"
    assert d.needs_rebuild  # redis-2 is down


def test_unpromotable_plan_records_the_priority_and_refuses_the_primary(inv):
    from redis_ha import view
    from redis_ha.actions.replica import plan_unpromotable
    from redis_ha.errors import GuardRefused

    v = view.of(inv, _facts(inv, redis_2={"replica_priority": 42}))
    plan = plan_unpromotable(v, "redis-2")
    assert plan.key() == [
        ("redis-2", "CONFIG SET replica-priority 0"),
        ("redis-2", "CONFIG SET replica-announced no"),
    ]
    assert plan.record == {"priority_restore": {"redis-2": 42}}
    left = plan_unpromotable(view.of(inv, _facts(inv, redis_2={"replica_priority": 0})), "redis-2")
    assert left.record["priority_restore"] == {"redis-2": inv.settings.replica_priority}
    down = plan_unpromotable(view.of(inv, _facts(inv, redis_2={"up": False})), "redis-2")
    assert down.is_noop and "down" in (down.noop or "")
    with pytest.raises(GuardRefused, match="current primary"):
        plan_unpromotable(v, "redis-1")


def test_restore_plans_from_the_record_not_the_live_priority(inv):
    from redis_ha import view
    from redis_ha.actions.replica import CHECK_IN_SYNC, plan_restore

    v = view.of(inv, _facts(inv, redis_2={"replica_priority": 0}))  # as the rebuild left it
    plan = plan_restore(v, "redis-2", {"redis-2": 42, "redis-3": 7})
    assert plan.key() == [
        ("redis-2", CHECK_IN_SYNC),
        ("redis-2", "CONFIG SET replica-priority 42"),
        ("redis-2", "CONFIG SET replica-announced yes"),
        ("redis-2", "CONFIG REWRITE"),
    ]
    forced = plan_restore(v, "redis-2", None, force=True)
    assert forced.key()[0] == (
        "redis-2",
        f"CONFIG SET replica-priority {inv.settings.replica_priority}",
    )


@pytest.mark.parametrize(
    ("over", "max_lag", "why"),
    [
        ({}, 1_000_000, None),
        ({"offset": 0}, 1_000_000, None),  # 1000 bytes behind: within the threshold
        ({"offset": 0}, 10, "redis-2 is 1000 bytes behind redis-1"),
        ({"offset": 0}, None, None),  # in_sync: the link-level verdict, no offsets
        ({"link_up": False}, None, "redis-2: replication link to redis-1 is down"),
        ({"loading": True}, None, "redis-2: full sync from redis-1 in progress"),
        (
            {"replicating_from": "redis-3"},
            None,
            "redis-2 replicates from redis-3, not from redis-1",
        ),
        ({"up": False, "error": "refused"}, None, "redis-2 is down: refused"),
    ],
)
def test_sync_problem_is_the_one_in_sync_verdict(inv, over, max_lag, why):
    from redis_ha import health

    f = _facts(inv, redis_2=over)
    r, p = f.node("redis-2"), f.node("redis-1")
    assert health.sync_problem(r, p, max_lag) == why
    if max_lag is None:
        assert health.in_sync(r, p) is (why is None)
