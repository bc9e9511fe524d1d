"""Split-brain detection and salvage decisions, from data (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_ha import inventory
from redis_ha import view as viewmod
from redis_ha.actions import splitbrain as sba
from redis_ha.errors import GuardRefused
from redis_ha.facts import ClusterFacts, NodeFacts, ReplicaLink, SentinelFacts
from redis_ha.splitbrain import (
    DISAGREE,
    NOTE,
    POLICIES,
    SPLIT,
    STALE_PEER,
    KeyVersion,
    decide,
    detect,
    session_ts,
)

P1, P2, P3 = 7001, 7002, 7003  # node ports; announce (proxy) ports are +100
S1, S2, S3 = 8001, 8002, 8003


def make_inv(announce: bool = True) -> inventory.Inventory:
    nodes = []
    for i, p in enumerate((P1, P2, P3), 1):
        n = {"name": f"redis-{i}", "host": "127.0.0.1", "port": p}
        if announce:
            n["announce"] = f"127.0.0.1:{p + 100}"
        nodes.append(n)
    data = {
        "lab": True,
        "master_name": "mymaster",
        "nodes": nodes,
        "sentinels": [
            {"name": f"sentinel-{i}", "host": "127.0.0.1", "port": p}
            for i, p in enumerate((S1, S2, S3), 1)
        ],
    }
    return inventory.from_dict(data, Path("/tmp/inv.yaml"))


INV = make_inv()


def addr(port: int) -> str:
    return f"127.0.0.1:{port + 100}"  # what Sentinels report: the announced address


def primary(name: str, port: int, replicas: list[str], keys: int = 10) -> NodeFacts:
    links = [
        ReplicaLink(address="x", name=r, state="online", offset=100, lag_s=0) for r in replicas
    ]
    return NodeFacts(
        name=name,
        address=f"127.0.0.1:{port}",
        up=True,
        role="master",
        offset=100,
        keys=keys,
        good_replicas=len(replicas),
        replicas=links,
        config={"min-replicas-to-write": "1"},
    )


def replica(name: str, port: int, of: str) -> NodeFacts:
    return NodeFacts(
        name=name,
        address=f"127.0.0.1:{port}",
        up=True,
        role="replica",
        replicating_from=of,
        link_up=True,
        offset=100,
    )


def down(name: str, port: int) -> NodeFacts:
    return NodeFacts(name=name, address=f"127.0.0.1:{port}", up=False, error="connection refused")


def sentinel(
    name: str, port: int, says: int, epoch: int = 1, peers: list[int] | None = None, **kw
) -> SentinelFacts:
    others = [p for p in (S1, S2, S3) if p != port] if peers is None else peers
    return SentinelFacts(
        name=name,
        address=f"127.0.0.1:{port}",
        up=True,
        primary=addr(says),
        primary_name=INV.name_of(addr(says)),
        flags=["master"],
        config_epoch=epoch,
        failover_state="none",
        num_other_sentinels=len(others),
        num_replicas=2,
        quorum_ok=True,
        sentinels=[{"ip": "127.0.0.1", "port": str(p), "runid": f"id{p}"} for p in others],
        **kw,
    )


def facts(nodes: list[NodeFacts], sentinels: list[SentinelFacts]) -> ClusterFacts:
    return ClusterFacts("inv", "mymaster", 0.0, 5, nodes, sentinels)


def healthy_nodes() -> list[NodeFacts]:
    return [
        primary("redis-1", P1, ["redis-2", "redis-3"]),
        replica("redis-2", P2, "redis-1"),
        replica("redis-3", P3, "redis-1"),
    ]


def all_say(port: int, epoch: int = 1) -> list[SentinelFacts]:
    return [sentinel(f"sentinel-{i}", p, port, epoch) for i, p in enumerate((S1, S2, S3), 1)]


def kinds(rep) -> set[str]:
    return {f.kind for f in rep.findings}


def test_announced_proxy_address_maps_back_to_the_node() -> None:
    assert INV.name_of("127.0.0.1:7101") == "redis-1"
    assert INV.name_of("127.0.0.1:7001") == "redis-1"
    assert INV.name_of("127.0.0.1:9999") == "127.0.0.1:9999"
    assert INV.node("redis-2").announced == ("127.0.0.1", 7102)
    assert make_inv(announce=False).node("redis-2").announced == ("127.0.0.1", 7002)


def test_bad_announce_is_a_readable_inventory_error() -> None:
    data = {
        "lab": True,
        "master_name": "m",
        "nodes": [{"name": "redis-1", "host": "h", "port": 1, "announce": "nonsense"}],
        "sentinels": [{"name": "sentinel-1", "host": "h", "port": 2}],
        "settings": {"quorum": 1, "min_replicas_to_write": 0},
    }
    with pytest.raises(inventory.InventoryError, match="announce.*not host:port"):
        inventory.from_dict(data, Path("/tmp/x.yaml"))


def test_healthy_cluster_is_consistent() -> None:
    rep = detect(INV, facts(healthy_nodes(), all_say(P1)))
    assert rep.consistent and not rep.split_brain and rep.exit_code == 0
    assert rep.authoritative == "redis-1" and rep.votes == 3
    assert rep.findings == []


def test_one_replica_down_is_not_split_brain() -> None:
    nodes = healthy_nodes()
    nodes[2] = down("redis-3", P3)
    rep = detect(INV, facts(nodes, all_say(P1)))
    assert rep.consistent and not rep.split_brain
    assert kinds(rep) == {NOTE}


def test_primary_down_before_failover_is_not_split_brain() -> None:
    nodes = healthy_nodes()
    nodes[0] = down("redis-1", P1)
    rep = detect(INV, facts(nodes, all_say(P1)))
    assert rep.consistent and not rep.split_brain and rep.stale_primaries == []


def test_isolated_old_primary_is_split_brain_and_partition_is_noted() -> None:
    nodes = [
        primary("redis-1", P1, ["redis-2", "redis-3"], keys=500),  # still believes it has replicas
        primary("redis-2", P2, ["redis-3"]),
        replica("redis-3", P3, "redis-2"),
    ]
    ss = all_say(P2, epoch=2)
    for s in ss:
        s.replicas = [
            {"ip": "127.0.0.1", "port": str(P1 + 100), "flags": "s_down,slave"},
            {"ip": "127.0.0.1", "port": str(P3 + 100), "flags": "slave"},
        ]
    rep = detect(INV, facts(nodes, ss))
    assert rep.split_brain and rep.exit_code == 1
    assert rep.authoritative == "redis-2" and rep.stale_primaries == ["redis-1"]
    assert rep.partitioned == ["redis-1"]
    text = " ".join(f.text for f in rep.findings)
    assert "redis-1 says it is a primary" in text and "accepts writes now" in text


def test_manual_promotion_is_split_brain() -> None:
    nodes = healthy_nodes()
    nodes[2] = primary("redis-3", P3, [])
    nodes[2].good_replicas = 0
    rep = detect(INV, facts(nodes, all_say(P1)))
    assert rep.split_brain and rep.stale_primaries == ["redis-3"]
    assert any("refuses writes now" in f.text for f in rep.findings)


def test_sentinel_with_old_view_disagrees() -> None:
    nodes = [
        replica("redis-1", P1, "redis-2"),
        primary("redis-2", P2, ["redis-1", "redis-3"]),
        replica("redis-3", P3, "redis-2"),
    ]
    ss = all_say(P2, epoch=2)
    ss[2] = sentinel("sentinel-3", S3, P1, epoch=1)
    rep = detect(INV, facts(nodes, ss))
    assert not rep.split_brain and not rep.consistent and rep.exit_code == 1
    assert rep.authoritative == "redis-2" and rep.disagreeing_sentinels == ["sentinel-3"]
    assert DISAGREE in kinds(rep)


def test_disagreement_names_the_majority_epoch_not_the_dissenter_epoch() -> None:
    nodes = [
        replica("redis-1", P1, "redis-2"),
        primary("redis-2", P2, ["redis-1", "redis-3"]),
        replica("redis-3", P3, "redis-2"),
    ]
    ss = all_say(P2, epoch=2)
    ss[2] = sentinel("sentinel-3", S3, P1, epoch=5)
    rep = detect(INV, facts(nodes, ss))
    text = next(f.text for f in rep.findings if f.node == "sentinel-3")
    assert "(epoch 5); the majority says redis-2 (epoch 2)" in text


def test_no_majority_is_a_disagreement() -> None:
    ss = [
        sentinel("sentinel-1", S1, P1),
        sentinel("sentinel-2", S2, P2),
        SentinelFacts(name="sentinel-3", address=f"127.0.0.1:{S3}", up=False, error="refused"),
    ]
    rep = detect(INV, facts(healthy_nodes(), ss))
    assert rep.authoritative is None and not rep.consistent
    assert any("no majority" in f.text for f in rep.findings)


def test_stale_peer_is_reported() -> None:
    ss = all_say(P1)
    ss[2] = sentinel("sentinel-3", S3, P1, peers=[S1, S2, 9999])
    rep = detect(INV, facts(healthy_nodes(), ss))
    assert rep.stale_peer_sentinels == ["sentinel-3"] and STALE_PEER in kinds(rep)
    assert rep.exit_code == 1
    assert any("9999" in f.text and "not in the inventory" in f.text for f in rep.findings)


def test_sentinel_listing_itself_under_another_loopback_name_is_a_stale_peer() -> None:
    ss = all_say(P1)
    ss[2] = sentinel("sentinel-3", S3, P1, peers=[S1, S2])
    ss[2].sentinels.append({"ip": "localhost", "port": str(S3), "runid": "idself"})
    rep = detect(INV, facts(healthy_nodes(), ss))
    assert rep.stale_peer_sentinels == ["sentinel-3"]
    assert any("lists itself" in f.text for f in rep.findings)


def test_report_json_shape() -> None:
    d = detect(INV, facts(healthy_nodes(), all_say(P1))).to_dict()
    for key in ("authoritative", "primaries", "sentinels", "split_brain", "consistent", "problems"):
        assert key in d
    assert d["sentinels"][0]["config_epoch"] == 1


# --- merge decisions ------------------------------------------------------------------------


def sv(ts: float | None, body: str = "a", pttl: int = -1) -> KeyVersion:
    value = (f'{{"v": 1, "ts": {ts}, "data": "{body}"}}' if ts is not None else body).encode()
    return KeyVersion(type="string", pttl=pttl, value=value, dump=b"D" + value)


@pytest.mark.parametrize(
    "policy, stale, auth, action",
    [
        ("authoritative-wins", sv(10), None, "copy"),
        ("authoritative-wins", sv(10), sv(10), "skip"),
        ("authoritative-wins", sv(20, "new"), sv(10, "old"), "keep"),
        ("authoritative-wins", sv(5, "old"), sv(10, "new"), "keep"),
        ("newest-wins", sv(20, "new"), sv(10, "old"), "replace"),
        ("newest-wins", sv(5, "old"), sv(10, "new"), "keep"),
        ("newest-wins", sv(10, "x"), sv(10, "y"), "keep"),
        ("newest-wins", sv(None, "x"), sv(10, "y"), "keep"),
        ("newest-wins", sv(20), None, "copy"),
        ("stale-only", sv(5, "old"), sv(10, "new"), "replace"),
        ("stale-only", sv(5), None, "copy"),
        ("authoritative-wins", sv(5, pttl=-2), None, "skip"),
    ],
)
def test_decide(policy: str, stale: KeyVersion, auth: KeyVersion | None, action: str) -> None:
    assert decide(stale, auth, policy).action == action


def test_default_policy_never_overwrites_the_authoritative_primary() -> None:
    versions = [sv(None), sv(1, "a"), sv(2, "b"), sv(3, "c", pttl=500)]
    hash_v = KeyVersion(type="hash", pttl=-1, dump=b"H1")
    versions.append(hash_v)
    for s in versions:
        for a in versions:
            d = decide(s, a)
            assert d.action != "replace", (s, a, d)
            assert d.action in ("skip", "keep")


def test_non_string_values_compare_by_dump() -> None:
    a = KeyVersion(type="hash", pttl=-1, dump=b"H1")
    b = KeyVersion(type="hash", pttl=-1, dump=b"H2")
    assert decide(a, a, "newest-wins").action == "skip"
    assert decide(a, b, "newest-wins").action == "keep"  # no ts to compare
    assert decide(a, b, "stale-only").action == "replace"


def test_session_ts_parsing() -> None:
    assert session_ts(b'{"v": 1, "ts": 1764161234.5}') == 1764161234.5
    assert session_ts(b"not json") is None
    assert session_ts(b'{"ts": "yesterday"}') is None
    assert session_ts(b'{"ts": true}') is None
    assert session_ts(None) is None


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        decide(sv(1), None, "whatever")
    assert set(POLICIES) == {"authoritative-wins", "newest-wins", "stale-only"}
    assert SPLIT != DISAGREE


# --- the recovery steps' plans and checks, from one view ----------------------------------------


def isolated_view():
    """redis-1 cut off but still a primary; the Sentinels' majority names redis-2."""
    nodes = [
        primary("redis-1", P1, ["redis-2", "redis-3"], keys=500),
        primary("redis-2", P2, ["redis-3"]),
        replica("redis-3", P3, "redis-2"),
    ]
    return viewmod.of(INV, facts(nodes, all_say(P2, epoch=2)))


def test_assess_records_the_authoritative_and_stale_primaries() -> None:
    plan = sba.plan_assess(isolated_view())
    assert plan.record == {"authoritative": "redis-2", "stale": ["redis-1"]}
    assert not plan.changes
    assert "stale primaries: redis-1" in plan.ops[1].command
    assert "500 keys" not in " ".join(c for _, c in plan.key())  # counts only in the reasons


def test_assess_refuses_a_primary_the_sentinels_do_not_name() -> None:
    with pytest.raises(GuardRefused, match="--primary redis-1 but the Sentinel majority"):
        sba.plan_assess(isolated_view(), primary="redis-1")


def test_assess_mid_failover_waits_and_records_nothing_yet() -> None:
    v = isolated_view()
    v.facts.sentinels[0].failover_state = "wait_promotion"
    plan = sba.plan_assess(v)
    assert plan.record == {} and "wait up to 20 s" in plan.ops[0].command
    assert plan.deferred  # a dry run's later steps are only indicative
    assert not sba.plan_assess(isolated_view()).deferred


def test_fence_demote_unfence_plan_from_the_record_not_live_roles() -> None:
    v = viewmod.of(INV, facts(healthy_nodes(), all_say(P1)))  # redis-3 since demoted by Sentinel
    fence = sba.plan_fence(v, "redis-1", ["redis-3"], pause_ms=5000)
    assert fence.key() == [("redis-3", "CLIENT PAUSE 5000 WRITE")]
    assert fence.record == {"fenced": ["redis-3"], "fence_ms": 5000}
    demote = sba.plan_demote(v, "redis-1", ["redis-3"], salvaged=["redis-3"])
    assert demote.key()[0] == ("redis-3", "REPLICAOF 127.0.0.1 7101")  # the announced address
    assert sba.plan_unfence(v, ["redis-3"]).key() == [("redis-3", "CLIENT UNPAUSE")]
    assert sba.plan_unfence(v, []).is_noop
    assert sba.plan_fence(v, "redis-1", ["redis-1"]).is_noop  # never the authoritative one


def test_demote_refuses_a_node_not_salvaged() -> None:
    with pytest.raises(GuardRefused, match="not salvaged yet"):
        sba.plan_demote(isolated_view(), "redis-2", ["redis-1"], salvaged=[])


def test_checks_judge_the_view_against_the_recorded_primary() -> None:
    v = isolated_view()
    assert sba.authoritative_confirmed(v, "redis-2").ok
    out = sba.authoritative_confirmed(v, "redis-1")
    assert not out.ok and "now name redis-2, not redis-1" in out.message
    assert not sba.only_authoritative_claims_primary(v, "redis-2").ok
    healthy = viewmod.of(INV, facts(healthy_nodes(), all_say(P1)))
    assert sba.only_authoritative_claims_primary(healthy, "redis-1").ok
    assert not sba.only_authoritative_claims_primary(healthy, "redis-2").ok


def test_repair_plans_reset_for_stale_peers_and_remonitor_for_a_wrong_primary() -> None:
    ss = all_say(P1)
    ss[1] = sentinel("sentinel-2", S2, P2, epoch=0)  # names another primary
    ss[2] = sentinel("sentinel-3", S3, P1, peers=[S1, S2, 8999])  # a peer not in the inventory
    plan = sba.plan_repair(viewmod.of(INV, facts(healthy_nodes(), ss)), "redis-1")
    cmds = dict(plan.key()[::2])
    assert cmds["sentinel-3"] == "SENTINEL RESET mymaster"
    assert cmds["sentinel-2"].startswith(
        "SENTINEL REMOVE mymaster; MONITOR mymaster 127.0.0.1 7101"
    )
    assert plan.params["how"] == {"sentinel-2": "remonitor", "sentinel-3": "reset"}
    assert sba.plan_repair(viewmod.of(INV, facts(healthy_nodes(), all_say(P1))), "redis-1").is_noop


def test_salvage_refuses_an_unknown_policy_before_reading() -> None:
    with pytest.raises(GuardRefused, match="unknown --policy 'bogus'"):
        sba.plan_salvage(isolated_view(), "redis-2", ["redis-1"], policy="bogus")


def test_repair_sets_the_settings_of_a_sentinel_left_with_defaults() -> None:
    """A repair cut between SENTINEL MONITOR and SET leaves Sentinel's defaults: the next run
    sets the inventory's settings again (nothing else reports them)."""
    ss = all_say(P1)
    ss[2] = sentinel("sentinel-3", S3, P1, config={"down-after-milliseconds": "30000"})
    plan = sba.plan_repair(viewmod.of(INV, facts(healthy_nodes(), ss)), "redis-1")
    assert plan.params["how"] == {"sentinel-3": "settings"}
    target, cmd = plan.key()[0]
    assert target == "sentinel-3" and cmd.startswith("SENTINEL SET mymaster quorum 2 ")
    assert "down-after-milliseconds is '30000'" in plan.ops[0].why


def test_unfence_keeps_a_node_that_still_claims_primary_fenced() -> None:
    """Unpaused, a stale primary would take writes again and Sentinel's held REPLICAOF would
    wipe its unsalvaged ones: the undo leaves its bounded pause and says so."""
    plan = sba.plan_unfence(isolated_view(), ["redis-1"], fence_ms=120_000)
    assert plan.is_noop and plan.record == {"fenced": ["redis-1"]}
    assert plan.noop is not None and "kept fenced: redis-1" in plan.noop and "120 s" in plan.noop
    v = isolated_view()
    v.facts.nodes[0].role = "replica"  # since demoted: its pause only holds its clients
    assert sba.plan_unfence(v, ["redis-1"]).key() == [("redis-1", "CLIENT UNPAUSE")]
