"""Pure decision logic of the failover procedures: preflight refusals and the Sentinel timeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from redis_ha import health as healthmod
from redis_ha import inventory
from redis_ha import sentinel_events as se
from redis_ha.actions import failover as fo
from redis_ha.actions import switch_sentinel as ss
from redis_ha.actions.failover import preflight
from redis_ha.actions.registry import Context
from redis_ha.errors import ClusterError, GuardRefused, InventoryError
from redis_ha.facts import ClusterFacts, NodeFacts, ReplicaLink, SentinelFacts
from redis_ha.inventory import Endpoint
from redis_ha.lab.ports import lab_inventory_dict
from redis_ha.plan import Plan
from redis_ha.view import of

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
    return preflight(of(INV, f), to)


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

    def execute_command(self, *args: str) -> None:
        assert args == ("CONFIG", "REWRITE"), args

    def close(self) -> None:
        pass


def _fake_clients(monkeypatch: pytest.MonkeyPatch, broken: set[str]) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(fo, "client", lambda inv, ep, **kw: _FakeNode(ep.name, broken, calls))
    return calls


def test_steer_plan_shows_and_records_the_rival_it_moves_back() -> None:
    """The plan says it also moves a rival as preferred as the target back to the default."""
    f = facts(**{"redis-3.replica_priority": 1})
    plan = fo.plan_steer(of(INV, f), to="redis-2")
    default = INV.settings.replica_priority
    assert plan.key()[:2] == [
        ("redis-2", f"CONFIG SET replica-priority {fo.STEER_PRIORITY}"),
        ("redis-3", f"CONFIG SET replica-priority {default}"),
    ]
    assert plan.key()[2][0] == "sentinels"
    assert plan.record == {"priority_restore": {"redis-2": 100, "redis-3": 1}}


def test_without_target_the_tool_chooses_and_steers_the_same_replica_in_both_plans() -> None:
    """No --to: the lowest priority, then the first name; the switch (planned after the steer
    changed priorities, or before it in the dry run) follows that same replica's INFO phase."""
    v = of(INV, facts())
    assert fo.default_target(v) == "redis-2"
    steer = fo.plan_steer(v)
    assert ("redis-2", "CONFIG SET replica-priority 1") in steer.key()
    after = of(INV, facts(**{"redis-2.replica_priority": 1}))
    for view in (v, after):
        sw = fo.plan_switch(view)
        assert sw.params["to"] == "redis-2"
        assert sw.params["phase_of"] == ["{}:{}".format(*INV.node("redis-2").announced)]
    assert fo.plan_switch(v).key() == fo.plan_switch(after).key()
    assert fo.default_target(of(INV, facts(**{"redis-3.replica_priority": 1}))) == "redis-3"


def test_steer_apply_stops_at_the_first_failed_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed steer puts back what it set itself: the runner undoes completed steps only."""
    plan = fo.plan_steer(of(INV, facts(**{"redis-3.replica_priority": 1})), to="redis-2")
    calls = _fake_clients(monkeypatch, broken={"redis-3"})
    with pytest.raises(ClusterError, match="redis-3"):
        fo.steer(Context(inv=INV, log=lambda _m: None), plan)
    assert calls == [("redis-2", fo.STEER_PRIORITY), ("redis-2", 100)]


def test_restore_priority_plans_from_the_record_alone() -> None:
    """Same plan whatever the live priorities are (dry run == run)."""
    rec = {"redis-3": 1, "redis-2": 100}
    a = fo.plan_restore_priority(of(INV, facts()), priority_restore=rec)
    b = fo.plan_restore_priority(of(INV, facts(**{"redis-2.replica_priority": 1})), rec)
    assert (
        a.key()
        == b.key()
        == [
            ("redis-2", "CONFIG SET replica-priority 100"),
            ("redis-2", "CONFIG REWRITE"),
            ("redis-3", "CONFIG SET replica-priority 1"),
            ("redis-3", "CONFIG REWRITE"),
        ]
    )
    assert fo.plan_restore_priority(of(INV, facts())).is_noop


def test_restore_priority_keeps_only_what_it_could_not_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_clients(monkeypatch, broken={"redis-3"})
    ctx = Context(inv=INV, log=lambda _m: None)
    plan = fo.plan_restore_priority(of(INV, facts()), {"redis-2": 100, "redis-3": 1})
    out = fo.restore_priority(ctx, plan)
    assert not out.ok and "redis-3" in out.message
    assert calls == [("redis-2", 100)]
    assert ctx.state["priority_restore"] == {"redis-3": 1}


def test_switch_plan_holds_every_value_of_the_loop() -> None:
    plan = fo.plan_switch(of(INV, facts()))
    p = plan.params
    assert (p["old"], p["to"], p["via"]) == ("redis-1", "redis-2", INV.sentinels[-1].name)
    assert p["replicas"] == ["redis-2", "redis-3"]
    assert p["pause_ms"] == fo.pause_for(INV, facts())
    assert p["failover_timeout_ms"] == INV.settings.failover_timeout_ms
    assert plan.record == {"old_primary": "redis-1"}
    cmds = [c for _, c in plan.key()]
    assert cmds[0].startswith("follow SENTINEL REPLICAS")  # the INFO phase, before the pause
    assert cmds[1] == f"CLIENT PAUSE {p['pause_ms']} WRITE" and cmds[-1] == "CLIENT UNPAUSE"
    assert ("redis-1", f"REPLICAOF {fo.PROMOTED}") in plan.key()
    assert (INV.sentinels[-1].name, f"SENTINEL FAILOVER {INV.master_name}") in plan.key()


def test_switch_plan_does_not_depend_on_the_steered_priority() -> None:
    """The dry run plans before steer changes priorities; the run after: same operations."""
    before = fo.plan_switch(of(INV, facts()), to="redis-3", via="sentinel-1")
    after = fo.plan_switch(
        of(INV, facts(**{"redis-3.replica_priority": 1})), "redis-3", "sentinel-1"
    )
    assert before.key() == after.key()
    assert before.params["via"] == "sentinel-1"


@pytest.mark.parametrize(
    ("down_after", "pause_ms", "expected"),
    [
        (3000, 1000, "between 2000 and 5000"),
        (3000, 6000, "between 2000 and 5000"),
        (3000, 2600, "above down-after 3000 ms minus 500 ms"),
        (1000, 2000, "above down-after 1000 ms"),
    ],
)
def test_switch_refuses_a_pause_sentinel_would_outwait(
    down_after: int, pause_ms: int, expected: str
) -> None:
    f = facts()
    for s in f.sentinels:
        s.config["down-after-milliseconds"] = str(down_after)
    with pytest.raises(GuardRefused, match=expected):
        fo.plan_switch(of(INV, f), pause_ms=pause_ms)


def test_switch_accepts_a_pause_under_down_after() -> None:
    f = facts()
    for s in f.sentinels:
        s.config["down-after-milliseconds"] = "3000"
    assert fo.plan_switch(of(INV, f), pause_ms=2500).params["pause_ms"] == 2500
    assert fo.plan_switch(of(INV, f)).params["pause_ms"] == 2500  # the default


def test_majority_choice_is_the_one_rule() -> None:
    a, b = ADDR["redis-1"], ADDR["redis-2"]
    assert healthmod.majority_choice({a: 2, b: 1}, 3) == a
    assert healthmod.majority_choice({a: 1, b: 1}, 3) is None
    assert healthmod.majority_choice({a: 2}, 4) is None  # a majority of all listed, not of up
    f = facts(**{"sentinel-3.primary": b})
    assert healthmod.authoritative_primary(f) == (a, 2)
    f = facts(**{"sentinel-2.primary": b, "sentinel-3.up": False})
    assert healthmod.authoritative_primary(f) == (None, 1)


def test_majority_names_counts_live_votes_and_excludes_the_old_primary() -> None:
    host, port = ADDR["redis-2"].rsplit(":", 1)
    scs: dict[str, object] = {s.name: _Votes([host, port]) for s in INV.sentinels}
    scs["sentinel-3"] = _Votes(None)
    assert ss.majority_names(INV, scs, exclude="redis-1") == "redis-2"  # type: ignore[arg-type]
    assert ss.majority_names(INV, scs, exclude="redis-2") is None  # type: ignore[arg-type]


class _Votes:
    def __init__(self, addr: list[str] | None) -> None:
        self.addr = addr

    def execute_command(self, *args: object) -> object:
        if self.addr is None:
            raise redis.ConnectionError("refused")
        return self.addr


def test_switch_with_a_node_gone_silent_is_one_error_and_closes_its_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replica that stops answering between the preflight and the switch: nothing paused."""
    plan: Plan = fo.plan_switch(of(INV, facts()))
    opened: list[_FakeConn] = []

    def fake_client(inv: object, ep: Endpoint, **kw: object) -> _FakeConn:
        opened.append(_FakeConn(ep.name, dead={"redis-3"}))
        return opened[-1]

    monkeypatch.setattr(fo, "client", fake_client)
    with pytest.raises(ClusterError, match="redis-3 does not answer.*nothing was switched"):
        fo.switchover(Context(inv=INV, log=lambda _m: None), plan)
    assert all(c.closed for c in opened)
    assert not any(c.commands for c in opened)  # no CLIENT PAUSE, no SENTINEL FAILOVER


def test_reachable_replicas_in_sync_tolerates_a_down_node_but_not_a_lagging_one() -> None:
    ok = fo.reachable_replicas_in_sync(of(INV, facts(**{"redis-3.up": False})))
    assert ok.ok and "redis-3 down" in ok.message
    bad = fo.reachable_replicas_in_sync(of(INV, facts(**{"redis-3.link_up": False})))
    assert not bad.ok and "redis-3" in bad.message


def test_old_primary_replicates_judges_the_view() -> None:
    f = facts()
    assert not fo.old_primary_replicates(of(INV, f), old="redis-1").ok  # still primary
    assert fo.old_primary_replicates(of(INV, f), old="redis-2").ok
    unknown = fo.old_primary_replicates(of(INV, f), old="redis-9")
    assert not unknown.ok and "unknown node 'redis-9'" in unknown.message


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


@pytest.mark.parametrize(
    ("age_ms", "aim_ms", "expected"),
    [(0, 780, 0.78), (500, 780, 0.28), (780, 780, 0.0), (781, 780, None), (9000, 780, None)],
)
def test_fire_in_waits_the_rest_of_the_way_or_for_the_next_reply(
    age_ms: float, aim_ms: float, expected: float | None
) -> None:
    got = ss.fire_in_s(age_ms, aim_ms)
    assert got == (None if expected is None else pytest.approx(expected))


def test_switch_plan_shows_the_wait_for_the_info_phase_first() -> None:
    """The wait for Sentinel's INFO phase is an op of the plan, before the pause, and bounded."""
    v = of(INV, facts())
    plan = fo.plan_switch(v, to="redis-2")
    first, second = plan.ops[0], plan.ops[1]
    assert first.command.startswith("follow SENTINEL REPLICAS") and "redis-2" in first.command
    assert second.command.startswith("CLIENT PAUSE")
    assert plan.params["phase_of"] == ["{}:{}".format(*v.inv.node("redis-2").announced)]
    assert plan.params["phase_wait_max_s"] <= 11.0


def test_switch_plan_says_which_path_it_takes(tmp_path: Path) -> None:
    """The plan names the path: the server's coordinated failover is detected (Valkey 9+) but
    the paused switch is kept; without it, the plan says why it is absent."""
    from redis_ha.actions.failover import plan_switch

    from .factories import lab_inv, view

    inv = lab_inv(tmp_path)
    redis7 = {f"sentinel_{i}": {"server": "redis", "version": "7.0.15"} for i in (1, 2, 3)}
    plan = plan_switch(view(inv, **redis7), to="redis-2")
    why = next(o.why for o in plan.ops if o.command.startswith("SENTINEL FAILOVER"))
    assert "no coordinated failover: sentinel-1 (redis 7.0.15): this server has no" in why
    assert plan.params["path"].startswith("path: pause + catch-up")
    valkey9 = {
        f"sentinel_{i}": {
            "server": "valkey",
            "version": "9.1.2",
            "failover_options": ["COORDINATED"],
        }
        for i in (1, 2, 3)
    }
    plan = plan_switch(view(inv, **valkey9), to="redis-2")
    assert "coordinated failover offered by every Sentinel, not used" in plan.params["path"]


class _Sentinel:
    """Stands in for a Sentinel client: answers the ping or not, and SENTINEL FAILOVER with OK,
    a refusal or nothing (a timeout: the command stays queued in a hung Sentinel)."""

    def __init__(self, ping: bool, failover: str, sent: list[str], name: str) -> None:
        self.ok, self.failover, self.sent, self.name = ping, failover, sent, name

    def ping(self) -> bool:
        if not self.ok:
            raise redis.TimeoutError("Timeout reading from socket")
        return True

    def execute_command(self, *args: str) -> str:
        self.sent.append(self.name)
        if self.failover == "timeout":
            raise redis.TimeoutError("Timeout reading from socket")
        if self.failover == "refuse":
            raise redis.ResponseError("NOGOODSLAVE No suitable replica to promote")
        return "OK"


def test_send_failover_skips_a_silent_sentinel_and_one_that_leaves_it_queued() -> None:
    sent: list[str] = []
    scs = {
        "sentinel-3": _Sentinel(False, "ok", sent, "sentinel-3"),  # hung before the ping
        "sentinel-2": _Sentinel(True, "timeout", sent, "sentinel-2"),  # hung after it
        "sentinel-1": _Sentinel(True, "ok", sent, "sentinel-1"),
    }
    held: list[bool] = []
    order = ["sentinel-3", "sentinel-2", "sentinel-1"]
    r = ss.send_failover(scs, order, "mymaster", lambda: held.append(True))  # type: ignore[arg-type]
    assert (r.via, r.silent, r.queued) == ("sentinel-1", ["sentinel-3"], ["sentinel-2"])
    assert sent == ["sentinel-2", "sentinel-1"]  # nothing sent to the one that missed its ping
    assert held == []  # the hook runs only between the first one's ping and its command
    assert r.hung() == {"sentinel-3", "sentinel-2"}
    assert "went to sentinel-1 instead" in ss.queued_warning(r)
    none = ss.send_failover({"sentinel-2": scs["sentinel-2"]}, ["sentinel-2"], "mymaster")  # type: ignore[dict-item]
    assert none.via is None and "restart it before it wakes" in ss.queued_warning(none)


def test_send_failover_stops_at_a_refusal() -> None:
    sent: list[str] = []
    scs = {n: _Sentinel(True, "refuse", sent, n) for n in ("sentinel-3", "sentinel-1")}
    with pytest.raises(ClusterError, match="NOGOODSLAVE"):
        ss.send_failover(scs, list(scs), "mymaster")  # type: ignore[arg-type]
    assert sent == ["sentinel-3"]
