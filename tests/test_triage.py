"""Incident triage decisions from facts (pure; data-driven over the rule table)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from redis_ha import paths, triage
from redis_ha.facts import ClusterFacts
from redis_ha.health import assess
from redis_ha.inventory import Inventory
from redis_ha.triage import CRITICAL, HIGH, INFO, MEDIUM, Leaf, Rule
from redis_ha.triage import triage as run_triage

from .factories import healthy, lab_inv

MB = 1024**2


def _down(f: ClusterFacts, *names: str) -> None:
    for o in (*f.nodes, *f.sentinels):
        if o.name in names:
            o.up, o.error = False, "connection refused"


def _failover_done(f: ClusterFacts, i: Inventory) -> None:
    """Sentinel promoted redis-2; redis-1 (the old primary) is still down."""
    _down(f, "redis-1")
    f.nodes[1].role, f.nodes[1].replicating_from, f.nodes[1].link_up = "master", None, None
    f.nodes[2].replicating_from = "redis-2"
    for s in f.sentinels:
        s.primary, s.primary_name, s.config_epoch = i.node("redis-2").address, "redis-2", 2
        s.replicas = [
            {"name": i.node("redis-1").address, "flags": "s_down,slave", "info-refresh": 0},
            {"name": i.node("redis-3").address, "flags": "slave", "info-refresh": 420},
        ]


def _oom(f: ClusterFacts, i: Inventory) -> None:
    p = f.nodes[0]
    p.used_memory, p.maxmemory = 5 * MB, 1 * MB
    p.config.update({"maxmemory": str(MB), "maxmemory-policy": "noeviction"})


def _evicting(f: ClusterFacts, i: Inventory) -> None:
    p = f.nodes[0]
    p.used_memory, p.maxmemory, p.stats["evicted_keys"] = MB, MB, 300.0
    p.config.update({"maxmemory": str(MB), "maxmemory-policy": "allkeys-lru"})


def _set(obj_index: int, kind: str, **attrs: object) -> Callable[[ClusterFacts, Inventory], None]:
    def fn(f: ClusterFacts, i: Inventory) -> None:
        obj = (f.nodes if kind == "node" else f.sentinels)[obj_index]
        for k, v in attrs.items():
            setattr(obj, k, v)

    return fn


def _drift(f: ClusterFacts, i: Inventory) -> None:
    f.sentinels[1].config = {"down-after-milliseconds": "60000"}


def _not_monitoring(f: ClusterFacts, i: Inventory) -> None:
    s = f.sentinels[2]
    s.error, s.primary, s.primary_name, s.flags = "does not monitor 'mymaster': ERR", None, None, []


def _primary_down_pending(f: ClusterFacts, i: Inventory) -> None:
    _down(f, "redis-1")
    f.sentinels[0].flags = ["master", "o_down"]
    f.sentinels[0].failover_state = "wait_promotion"


def _back_not_replicating(f: ClusterFacts, i: Inventory) -> None:
    n = f.nodes[0]  # the old primary, back empty after Sentinel promoted redis-2
    n.uptime_s, n.keys = 5, 0
    f.nodes[1].role, f.nodes[1].replicating_from, f.nodes[1].link_up = "master", None, None
    f.nodes[2].replicating_from = "redis-2"
    for s in f.sentinels:
        s.primary, s.primary_name = i.node("redis-2").address, "redis-2"


def _looping(f: ClusterFacts, i: Inventory, served: int = 3, *nodes: int) -> ClusterFacts:
    """Replicas (default redis-3) in a full sync at both looks, 3 s apart, while redis-1 served
    `served` full syncs in between; returns the earlier look's facts."""
    for n in nodes or (2,):
        f.nodes[n].sync_in_progress, f.nodes[n].link_up = True, False
    before = copy.deepcopy(f)
    before.taken_at = f.taken_at - 3
    before.nodes[0].stats["sync_full"] = 2.0
    f.nodes[0].stats["sync_full"] = 2.0 + served
    return before


# (case, bend the healthy cluster, first diagnosis, its runbook, its step, its command); a bend
# that returns facts returns an earlier look's.
CASES: list[tuple[str, Callable[[ClusterFacts, Inventory], Any], str, str, str, str]] = [
    (
        "all down",
        lambda f, i: _down(f, "redis-1", "redis-2", "redis-3"),
        "all-down",
        "rollback",
        "preflight",
        "invoke rollback.run",
    ),
    (
        "primary down, failover pending",
        _primary_down_pending,
        "failover-pending",
        "failover-automatic",
        "agreement",
        "invoke failover.verify",
    ),
    (
        "primary down, no quorum",
        lambda f, i: _down(f, "redis-1", "sentinel-2", "sentinel-3"),
        "primary-down-no-quorum",
        "rollback",
        "preflight",
        "invoke rollback.run",
    ),
    (
        "primary down, within down-after",
        lambda f, i: _down(f, "redis-1"),
        "primary-down",
        "failover-automatic",
        "agreement",
        "invoke failover.verify",
    ),
    (
        "failover done, old primary down: restart, never rebuild",
        _failover_done,
        "old-primary-down",
        "failover-automatic",
        "old-primary",
        "restart redis-1 (its process, container or service), then "
        "invoke failover.verify --old redis-1",
    ),
    (
        "old primary back, not replicating",
        _back_not_replicating,
        "back-not-replicating",
        "failover-automatic",
        "old-primary",
        "invoke failover.verify --old redis-1",
    ),
    (
        "replica down",
        lambda f, i: _down(f, "redis-3"),
        "replica-down",
        "replica-rebuild",
        "diagnose",
        "invoke replica.rebuild --node redis-3",
    ),
    (
        "replica detached (diverged)",
        _set(2, "node", link_up=False),
        "replica-detached",
        "replica-rebuild",
        "diagnose",
        "invoke replica.rebuild --node redis-3",
    ),
    (
        "replica in full sync",
        _set(2, "node", sync_in_progress=True, link_up=False),
        "replica-syncing",
        "replica-rebuild",
        "full-sync",
        "invoke replica.diagnose --node redis-3",
    ),
    (
        "replica in a full-sync loop (two looks)",
        _looping,
        "full-sync-loop",
        "replica-rebuild",
        "full-sync-loop",
        "invoke replica.diagnose --node redis-3",
    ),
    (
        "replica lagging",
        _set(2, "node", lag_bytes=5_000_000),
        "replica-lagging",
        "replica-rebuild",
        "diagnose",
        "invoke replica.diagnose --node redis-3",
    ),
    (
        "both replicas down: NOREPLICAS",
        lambda f, i: _down(f, "redis-2", "redis-3"),
        "noreplicas",
        "replica-rebuild",
        "diagnose",
        "invoke replica.rebuild --node redis-2",
    ),
    (
        "one Sentinel down",
        lambda f, i: _down(f, "sentinel-2"),
        "sentinels-down",
        "sentinel-repair",
        "start-down",
        "invoke sentinel.repair",
    ),
    (
        "quorum lost",
        lambda f, i: _down(f, "sentinel-2", "sentinel-3"),
        "quorum-lost",
        "sentinel-repair",
        "start-down",
        "invoke sentinel.repair",
    ),
    (
        "Sentinel no longer monitors",
        _not_monitoring,
        "sentinel-not-monitoring",
        "sentinel-repair",
        "monitor",
        "invoke sentinel.repair",
    ),
    (
        "Sentinel in TILT",
        _set(0, "sentinel", tilt=True),
        "sentinel-tilt",
        "sentinel-repair",
        "tilt",
        "invoke sentinel.repair",
    ),
    (
        "Sentinels disagree",
        _set(2, "sentinel", primary="127.0.0.1:1", primary_name="redis-2"),
        "sentinels-disagree",
        "split-brain",
        "assess",
        "invoke splitbrain.recover --dry-run, then invoke splitbrain.recover",
    ),
    (
        "split-brain",
        _set(1, "node", role="master", replicating_from=None),
        "split-brain",
        "split-brain",
        "assess",
        "invoke splitbrain.recover --dry-run, then invoke splitbrain.recover",
    ),
    (
        "restart-empty",
        lambda f, i: (_set(0, "node", uptime_s=2, keys=0)(f, i), _set(1, "node", keys=5000)(f, i)),
        "restart-empty",
        "safe-restart",
        "if-it-happened-anyway",
        "invoke runbooks.show safe-restart",
    ),
    (
        "config drift on a Sentinel",
        _drift,
        "config-drift",
        "config-drift",
        "list",
        "invoke config.converge",
    ),
    ("out of memory", _oom, "out-of-memory", "memory-pressure", "measure", "invoke memory.relieve"),
    ("evicting", _evicting, "evicting", "memory-pressure", "measure", "invoke memory.relieve"),
    (
        "writes left paused",
        _set(0, "node", writes_paused=True),
        "writes-paused",
        "writes-paused",
        "unpause",
        "invoke writes.unpause",
    ),
]


@pytest.mark.parametrize(("case", "bend", "diagnosis", "runbook", "step", "command"), CASES)
def test_first_finding(
    tmp_path: Path,
    case: str,
    bend: Callable[[ClusterFacts, Inventory], Any],
    diagnosis: str,
    runbook: str,
    step: str,
    command: str,
) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    earlier = bend(f, i)
    out = run_triage(i, f, assess(i, f), earlier if isinstance(earlier, ClusterFacts) else None)
    assert out, case
    top = out[0]
    assert (top.diagnosis, top.runbook, top.step, top.command) == (
        diagnosis,
        runbook,
        step,
        command,
    ), [x.to_dict() for x in out]


def test_every_rule_has_a_case() -> None:
    assert {c[2] for c in CASES} == {r.name for r in triage.RULES}


def test_healthy_cluster_says_so_and_names_the_planned_failover(tmp_path: Path) -> None:
    """Nothing to do; who looks at a healthy cluster is mostly about to do planned work."""
    i = lab_inv(tmp_path)
    f = healthy(i)
    (only,) = run_triage(i, f, assess(i, f))
    assert (only.diagnosis, only.severity, only.runbook, only.step) == (
        "healthy",
        INFO,
        "failover-manual",
        "preflight",
    )
    assert only.command == "invoke failover.manual --dry-run, then invoke failover.manual"
    assert "redis-1 is primary with 2 in-sync" in only.title
    assert triage.actionable([only]) == []


def test_one_full_sync_between_two_looks_is_no_loop(tmp_path: Path) -> None:
    """A replica restarted: one sync, seen at both looks. Not a loop; nor two replicas
    resyncing once each; nor a primary restarted between the looks (its counter restarted)."""
    i = lab_inv(tmp_path)
    f = healthy(i)
    earlier = _looping(f, i, 1)
    out = run_triage(i, f, assess(i, f), earlier)
    assert out[0].diagnosis == "replica-syncing", [x.diagnosis for x in out]
    f = healthy(i)
    earlier = _looping(f, i, 2, 1, 2)
    assert "full-sync-loop" not in [x.diagnosis for x in run_triage(i, f, assess(i, f), earlier)]
    f = healthy(i)
    earlier = _looping(f, i, 5)
    earlier.nodes[0].run_id = "a-process-before-a-restart"
    assert run_triage(i, f, assess(i, f), earlier)[0].diagnosis == "replica-syncing"


def test_both_replicas_looping_is_critical_and_never_a_rebuild(tmp_path: Path) -> None:
    """The primary refuses writes (no in-sync replica): critical, and NOREPLICAS does not send
    the looping replicas to a rebuild (it would loop the same way)."""
    i = lab_inv(tmp_path)
    f = healthy(i)
    f.nodes[0].config["client-output-buffer-limit"] = "normal 0 0 0 slave 16384 0 0 pubsub 0 0 0"
    f.nodes[0].stats["repl_backlog_size"] = 1048576.0
    earlier = _looping(f, i, 9, 1, 2)
    out = run_triage(i, f, assess(i, f), earlier)
    assert [(x.diagnosis, x.severity) for x in out[:2]] == [
        ("full-sync-loop", CRITICAL),
        ("full-sync-loop", CRITICAL),
    ]
    assert "1048576 bytes, never below repl-backlog-size" in out[0].why
    assert {x.diagnosis for x in out} == {"full-sync-loop"}  # said once, not also "syncing"
    assert not any("rebuild" in (x.command or "") for x in out), [x.command for x in out]


def test_old_primary_down_is_never_a_rebuild(tmp_path: Path) -> None:
    """The bug of issue 14: after an automatic failover `incident` said replica.rebuild."""
    i = lab_inv(tmp_path)
    f = healthy(i)
    _failover_done(f, i)
    out = run_triage(i, f, assess(i, f))
    assert not any("rebuild" in (x.command or "") for x in out), [x.command for x in out]
    assert out[0].severity == HIGH


def test_old_primary_down_while_the_other_replica_resyncs(tmp_path: Path) -> None:
    """Right after the failover the new primary refuses writes until the other replica has
    synced: still restart the old primary, and never name it for a rebuild."""
    i = lab_inv(tmp_path)
    f = healthy(i)
    _failover_done(f, i)
    f.nodes[2].sync_in_progress, f.nodes[2].link_up = True, False
    out = run_triage(i, f, assess(i, f))
    assert out[0].diagnosis == "old-primary-down", [x.to_dict() for x in out]
    assert not any("rebuild" in (x.command or "") for x in out)


def test_replica_down_severity_and_params(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    _down(f, "redis-3")
    (top,) = run_triage(i, f, assess(i, f))
    assert top.params == {"node": "redis-3"} and top.severity == HIGH


def test_sentinel_down_with_spare_is_medium(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    f.sentinels.append(type(f.sentinels[0])(**{**vars(f.sentinels[0]), "name": "sentinel-4"}))
    _down(f, "sentinel-4")
    out = run_triage(i, f, assess(i, f))
    assert out[0].diagnosis == "sentinels-down" and out[0].severity == MEDIUM


def test_oom_outranks_the_drift_it_comes_from(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    _oom(f, i)
    out = run_triage(i, f, assess(i, f))
    assert [x.diagnosis for x in out] == ["out-of-memory", "config-drift"]
    assert out[0].severity == CRITICAL


def test_unexplained_problem_falls_back_to_the_check(tmp_path: Path) -> None:
    i = lab_inv(tmp_path)
    f = healthy(i)
    f.sentinels[0].quorum_ok, f.sentinels[0].quorum_msg = False, "NOQUORUM"
    for s in f.sentinels:
        s.quorum_ok = False
    out = run_triage(i, f, assess(i, f))
    assert out[0].diagnosis == "unexplained" and out[0].command == "invoke check"


def test_every_leaf_leads_somewhere() -> None:
    from redis_ha.cli.app import ns

    base = paths.shipped("playbooks").parent
    assert triage.leaf_problems(base, ns.task_names) == []


def test_a_broken_leaf_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = Rule("x", MEDIUM, triage.tilt, "t", "w", Leaf("sentinel-repair", "nope", "no.task"))
    monkeypatch.setattr(triage, "RULES", (bad,))
    base = paths.shipped("playbooks").parent
    assert triage.leaf_problems(base, {"check", "failover.manual"}) == [
        "diagnosis x: sentinel-repair has no step 'nope'",
        "diagnosis x: no task 'no.task'",
    ]
