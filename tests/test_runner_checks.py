"""The common checks (actions/cluster.py) on the real lab: true on a healthy cluster, false with
a plain reason when it is not, and unknown node names rejected."""

from __future__ import annotations

import re

from redis_ha import view as viewmod
from redis_ha.actions import registry
from redis_ha.conn import call
from redis_ha.errors import HAError
from redis_ha.lab.cluster import Lab
from redis_ha.view import View

registry.load_all()


def chk(view: View, name: str, **args: str) -> registry.Outcome:
    return registry.CHECKS[name].fn(view, **args)


def test_all_true_on_a_healthy_cluster(lab: Lab) -> None:
    ctx = viewmod.take(lab.inv)
    primary = lab.current_primary().name
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    for name in (
        "cluster.healthy",
        "cluster.quorum_ok",
        "cluster.sentinels_agree",
        "cluster.no_failover_in_progress",
        "cluster.one_node_claims_primary",
        "cluster.writes_accepted",
        "cluster.all_replicas_in_sync",
    ):
        out = chk(ctx, name)
        assert out.ok, (name, out.message)
    for name in ("node.up", "node.is_replica", "node.in_sync", "node.not_primary"):
        out = chk(ctx, name, node=replica)
        assert out.ok, (name, out.message)
    assert (
        chk(ctx, "node.in_sync", node=primary).message == f"{primary} is the primary, not a replica"
    )
    assert chk(ctx, "node.not_primary", node=primary).message == f"{primary} is the current primary"
    assert not chk(ctx, "node.is_replica", node=primary).ok
    unknown = chk(ctx, "node.up", node="redis-9")  # a failed check, never a traceback
    assert not unknown.ok
    assert re.search("unknown node 'redis-9'.*redis-1, redis-2, redis-3", unknown.message)
    dry = chk(viewmod.take(lab.inv, dry_run=True), "cluster.writes_accepted")
    assert dry.ok and "skipped: dry run" in dry.message


def test_false_with_reasons_when_a_replica_is_down(lab: Lab) -> None:
    primary = lab.current_primary().name
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    lab.stop(replica, kill=True)
    ctx = viewmod.take(lab.inv)
    out = chk(ctx, "node.up", node=replica)
    assert not out.ok and out.message == f"{replica} is down: connection refused (not running?)"
    assert not chk(ctx, "node.in_sync", node=replica).ok
    out = chk(ctx, "cluster.all_replicas_in_sync")
    assert not out.ok and replica in out.message
    assert not chk(ctx, "cluster.healthy").ok
    assert chk(ctx, "cluster.writes_accepted").ok  # one in-sync replica is enough to write


def test_writes_refused_names_the_cause(lab: Lab) -> None:
    ep = lab.current_primary()
    call(lab.inv, ep, "CONFIG", "SET", "min-replicas-to-write", "3")
    try:
        out = chk(viewmod.take(lab.inv), "cluster.writes_accepted")
    finally:
        call(lab.inv, ep, "CONFIG", "SET", "min-replicas-to-write", "1")
    assert not out.ok
    assert out.message.startswith(f"{ep.name} refused a probe write: NOREPLICAS")


def test_password_settings_never_reach_the_screen(lab: Lab) -> None:
    # node.set_config refuses auth settings when it runs; its dry-run text and node.config_is
    # must not print the password either (CONFIG GET also takes patterns like '*pass*').
    ctx = viewmod.take(lab.inv)
    pw = lab.inv.password()
    assert pw
    node = lab.inv.nodes[0].name
    plan = registry.ACTIONS["node.set_config"].fn
    seen = []
    for parameter in ("requirepass", "masterauth", "*pass*"):
        try:
            seen.append("; ".join(plan(ctx, node=node, parameter=parameter, value="x").lines()))
        except HAError as e:
            seen.append(str(e))
        try:
            out = chk(ctx, "node.config_is", node=node, parameter=parameter, value="x")
            seen.append(out.message)
        except HAError as e:
            seen.append(str(e))
    assert not [s for s in seen if pw in s], seen
    assert "not a setting node.set_config may change" in seen[0]
