"""Split-brain detection and salvage decisions, from data (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_ha import inventory
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
