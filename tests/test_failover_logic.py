"""Pure decision logic of the failover procedures: preflight refusals and the Sentinel timeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from redis_ha import health as healthmod
from redis_ha import inventory
from redis_ha import sentinel_events as se
from redis_ha.actions import failover as fo
from redis_ha.actions.failover import preflight
from redis_ha.actions.registry import Context
from redis_ha.errors import ClusterError, InventoryError
from redis_ha.facts import ClusterFacts, NodeFacts, ReplicaLink, SentinelFacts
from redis_ha.inventory import Endpoint
from redis_ha.lab.ports import lab_inventory_dict

INV = inventory.from_dict(lab_inventory_dict(Path("/tmp/failover-logic")), Path("/tmp/x.yaml"))
ADDR = {n.name: n.address for n in INV.nodes}


def facts(**change: object) -> ClusterFacts:
    """A healthy cluster (redis-1 primary), with `change` applied: {"redis-2.link_up": False}."""
    nodes = [
        NodeFacts(
            name="redis-1",
            address=ADDR["redis-1"],
            up=True,
            role="master",
            offset=100,
            replica_priority=100,
            replicas=[ReplicaLink(ADDR[n], n, "online", 100, 0) for n in ("redis-2", "redis-3")],
        )
    ]
    for n in ("redis-2", "redis-3"):
        nodes.append(
            NodeFacts(
                name=n,
                address=ADDR[n],
                up=True,
                role="replica",
                replicating_from="redis-1",
                link_up=True,
                offset=100,
                replica_priority=100,
            )
        )
    sentinels = [
        SentinelFacts(
            name=s.name,
            address=s.address,
            up=True,
            primary=ADDR["redis-1"],
            primary_name="redis-1",
            flags=["master"],
            failover_state="none",
            quorum_ok=True,
            num_other_sentinels=2,
            num_replicas=2,
        )
        for s in INV.sentinels
    ]
    f = ClusterFacts("x", "mymaster", 0.0, 1, nodes, sentinels)
    for key, value in change.items():
        name, attr = key.split(".")
        obj = f.node(name) if name.startswith("redis") else f.sentinel(name)
        setattr(obj, attr, value)
    return f


def check(f: ClusterFacts, to: str | None = None) -> list[str]:
    h = healthmod.assess(INV, f)
    return preflight(INV, f, h, to)[1]


def test_healthy_cluster_passes_with_and_without_target() -> None:
    assert check(facts()) == []
    assert check(facts(), "redis-3") == []


@pytest.mark.parametrize(
    ("change", "to", "expected"),
    [
        ({}, "redis-1", "redis-1 is already the primary"),
        ({"redis-2.link_up": False}, "redis-2", "redis-2 is not an in-sync replica"),
        ({"redis-2.up": False}, "redis-2", "redis-2 is down"),
        ({"redis-3.replica_priority": 0}, "redis-3", "replica-priority 0"),
        (
            {"redis-2.link_up": False, "redis-3.sync_in_progress": True},
            None,
            "no in-sync replica of redis-1 can be promoted",
        ),
        (
            {"sentinel-2.up": False, "sentinel-3.up": False},
            None,
            "Sentinel quorum is not reachable",
        ),
        (
            {"sentinel-3.primary": ADDR["redis-2"], "sentinel-3.primary_name": "redis-2"},
            None,
            "Sentinels disagree on the primary",
        ),
        ({"sentinel-1.failover_state": "wait_promotion"}, None, "failover is already in progress"),
        (
            {"sentinel-2.flags": ["master", "failover_in_progress"]},
            None,
            "failover is already in progress",
        ),
        ({"redis-3.role": "master"}, None, "split-brain"),
    ],
)
def test_preflight_refuses(change: dict[str, object], to: str | None, expected: str) -> None:
    problems = check(facts(**change), to)
    assert any(expected in p for p in problems), problems


def test_unknown_target_is_an_inventory_error() -> None:
    with pytest.raises(InventoryError, match="unknown node 'redis-9'"):
        check(facts(), "redis-9")


class _FakeNode:
    """Stands in for a node client: CONFIG SET fails on the nodes named in `broken`."""

    def __init__(self, name: str, broken: set[str], calls: list[tuple[str, int]]) -> None:
        self.name, self.broken, self.calls = name, broken, calls

    def config_set(self, key: str, value: int) -> None:
        if self.name in self.broken:
            raise redis.ConnectionError("Connection refused")
        self.calls.append((self.name, value))

    def close(self) -> None:
        pass


def _fake_clients(monkeypatch: pytest.MonkeyPatch, broken: set[str]) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(fo, "client", lambda inv, ep, **kw: _FakeNode(ep.name, broken, calls))
    return calls


def test_steer_records_what_to_restore_before_a_later_change_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = facts(**{"redis-3.replica_priority": 1})  # a rival as preferred as the target
    monkeypatch.setattr(fo, "_require_preflight", lambda ctx, to: (f, healthmod.assess(INV, f)))
    calls = _fake_clients(monkeypatch, broken={"redis-3"})
    ctx = Context(inv=INV, log=lambda _m: None)
    with pytest.raises(ClusterError, match="redis-3"):
        fo.steer(ctx, to="redis-2")
    assert calls == [("redis-2", fo.STEER_PRIORITY)]
    # The undo (restore_priority) must find redis-2's original priority.
    assert ctx.state["priority_restore"]["redis-2"] == 100


def test_restore_priority_keeps_only_what_it_could_not_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_clients(monkeypatch, broken={"redis-3"})
    ctx = Context(
        inv=INV, log=lambda _m: None, state={"priority_restore": {"redis-2": 100, "redis-3": 1}}
    )
    out = fo.restore_priority(ctx)
    assert not out.ok and "redis-3" in out.message
    assert calls == [("redis-2", 100)]
    assert ctx.state["priority_restore"] == {"redis-3": 1}


def test_switch_with_a_node_gone_silent_is_one_error_and_closes_its_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replica that stops answering between the preflight and the switch: nothing paused."""
    f = facts()
    monkeypatch.setattr(fo, "_require_preflight", lambda ctx, to: (f, healthmod.assess(INV, f)))
    opened: list[_FakeConn] = []

    def fake_client(inv: object, ep: Endpoint, **kw: object) -> _FakeConn:
        opened.append(_FakeConn(ep.name, dead={"redis-3"}))
        return opened[-1]

    monkeypatch.setattr(fo, "client", fake_client)
    with pytest.raises(ClusterError, match="redis-3 does not answer.*nothing was switched"):
        fo.switchover(Context(inv=INV, log=lambda _m: None))
    assert all(c.closed for c in opened)
    assert not any(c.commands for c in opened)  # no CLIENT PAUSE, no SENTINEL FAILOVER


class _FakeConn:
    def __init__(self, name: str, dead: set[str]) -> None:
        self.name, self.dead, self.closed, self.commands = name, dead, False, []

    def ping(self) -> bool:
        if self.name in self.dead:
            raise redis.TimeoutError("Timeout reading from socket")
        return True

    def execute_command(self, *args: object) -> object:
        self.commands.append(args)
        return True

    def close(self) -> None:
        self.closed = True


MANUAL_LOG = {
    "sentinel-1": """\
1:X 26 Nov 2026 12:53:31.661 # +new-epoch 1
1:X 26 Nov 2026 12:53:32.294 # +config-update-from sentinel abc 127.0.0.1 3 @ mymaster 127.0.0.1 1
1:X 26 Nov 2026 12:53:32.294 # +switch-master mymaster 127.0.0.1 1 127.0.0.1 3
1:X 26 Nov 2026 12:53:32.295 * Sentinel new configuration saved on disk
""",
    "sentinel-3": """\
3:X 26 Nov 2026 12:53:31.194 # Executing user requested FAILOVER of 'mymaster'
3:X 26 Nov 2026 12:53:31.194 # +new-epoch 1
3:X 26 Nov 2026 12:53:31.194 # +try-failover master mymaster 127.0.0.1 1
3:X 26 Nov 2026 12:53:31.281 # +selected-slave slave 127.0.0.1:3 127.0.0.1 3 @ mymaster 127.0.0.1 1
3:X 26 Nov 2026 12:53:32.241 # +promoted-slave slave 127.0.0.1:3 127.0.0.1 3 @ mymaster 127.0.0.1 1
3:X 26 Nov 2026 12:53:33.322 # +failover-end master mymaster 127.0.0.1 1
3:X 26 Nov 2026 12:53:33.322 # +switch-master mymaster 127.0.0.1 1 127.0.0.1 3
""",
}

# An earlier failover with the same addresses (1 -> 3) a minute before must not be mixed in.
AUTO_LOG = {
    "sentinel-1": """\
1:X 26 Nov 2026 13:00:00.000 # +switch-master mymaster 127.0.0.1 1 127.0.0.1 3
1:X 26 Nov 2026 13:00:10.000 # +switch-master mymaster 127.0.0.1 3 127.0.0.1 1
1:X 26 Nov 2026 13:00:42.875 # +sdown master mymaster 127.0.0.1 1
1:X 26 Nov 2026 13:00:42.946 # +odown master mymaster 127.0.0.1 1 #quorum 2/2
1:X 26 Nov 2026 13:00:42.946 # +try-failover master mymaster 127.0.0.1 1
1:X 26 Nov 2026 13:00:43.010 # +elected-leader master mymaster 127.0.0.1 1
1:X 26 Nov 2026 13:00:43.990 # +promoted-slave slave 127.0.0.1:3 127.0.0.1 3 @ mymaster 127.0.0.1 1
1:X 26 Nov 2026 13:00:45.124 # +failover-end master mymaster 127.0.0.1 1
1:X 26 Nov 2026 13:00:45.124 # +switch-master mymaster 127.0.0.1 1 127.0.0.1 3
""",
    "sentinel-2": """\
2:X 26 Nov 2026 13:00:42.861 # +sdown master mymaster 127.0.0.1 1
2:X 26 Nov 2026 13:00:44.052 # +switch-master mymaster 127.0.0.1 1 127.0.0.1 3
""",
}


def _events(logs: dict[str, str]) -> list[se.Event]:
    evs = [e for name, text in logs.items() for e in se.parse_log(text, name)]
    return sorted(evs, key=lambda e: e.ts)


def test_parse_line_ignores_non_events() -> None:
    line = "1:X 26 Nov 2026 12:53:32.295 * Sentinel new configuration saved"
    assert se.parse_line(line, "s") is None
    assert se.parse_line("garbage", "s") is None
    e = se.parse_line("1:X 26 Nov 2026 12:53:32.294 # +switch-master m h 1 h 2", "s")
    assert e is not None and e.name == "+switch-master" and e.text == "m h 1 h 2"


def test_manual_failover_timeline() -> None:
    fo = se.last_failover(
        _events(MANUAL_LOG), "mymaster", down_after_ms=3000, failover_timeout_ms=10000
    )
    assert fo is not None
    assert fo.kind.startswith("manual")
    assert (fo.old_primary, fo.new_primary, fo.leader) == (
        "127.0.0.1:1",
        "127.0.0.1:3",
        "sentinel-3",
    )
    d = fo.durations()
    assert d["start_to_promotion_s"] == pytest.approx(1.047)
    assert d["until_first_sentinel_switched_s"] == pytest.approx(1.1)
    assert d["until_all_sentinels_switched_s"] == pytest.approx(2.128)
    assert d["detection_s"] is None


def test_automatic_failover_timeline_ignores_earlier_failovers() -> None:
    fo = se.last_failover(
        _events(AUTO_LOG), "mymaster", down_after_ms=3000, failover_timeout_ms=10000
    )
    assert fo is not None and fo.kind == "automatic" and fo.leader == "sentinel-1"
    d = fo.durations()
    assert fo.first_sdown is not None and fo.crash_estimate is not None
    assert d["detection_s"] == pytest.approx(3.0)
    # from the estimated crash (13:00:39.861) to sentinel-2's switch (13:00:44.052)
    assert d["until_first_sentinel_switched_s"] == pytest.approx(4.191)
    assert d["failover_total_s"] == pytest.approx(5.263)
    assert [e.name for e in fo.events][:2] == ["+sdown", "+sdown"]


def test_no_failover_in_logs() -> None:
    evs = se.parse_log("1:X 26 Nov 2026 13:00:42.875 # +sdown slave x", "sentinel-1")
    assert se.last_failover(evs, "mymaster", down_after_ms=1, failover_timeout_ms=1) is None
