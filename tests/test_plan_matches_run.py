"""The dry run is the real run minus execution: for every playbook, the plan `--dry-run` prints
and journals equals, operation for operation, the plan the real run that follows journals; and
the runner gathers facts once per guard round and once per verify poll, never per check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_ha import appconfig, inventory
from redis_ha import facts as factsmod
from redis_ha import journal as journalmod
from redis_ha import playbook as playbookmod
from redis_ha.conn import client
from redis_ha.lab import partition, scenarios
from redis_ha.lab.cluster import Lab
from redis_ha.runner import Runner

from .conftest import ROOT, run_invoke

pytestmark = pytest.mark.lab

TEST_PB = str(ROOT / "tests" / "data" / "playbooks" / "priority-change.yaml")


def journaled_plans(path: Path) -> list[tuple[str, bool, list[tuple[str, str]]]]:
    """(step, undo, [(target, command)]) of every plan record of one run (a journal file, or a
    journal folder holding one run), in order."""
    if path.is_dir():
        (path,) = journalmod.runs(path)
    out = []
    for r in journalmod.read(path):
        if r["event"] == "plan":
            ops = [(o["target"], o["command"]) for o in (r.get("plan") or {}).get("ops", [])]
            out.append((r["step"], bool(r.get("undo")), ops))
    return out


def last_run(jdir: Path) -> Path:
    return journalmod.runs(jdir)[-1]


def dry_then_real(
    jdir: Path, inv_path: Path, *args: str, timeout: float = 180
) -> tuple[list[Any], list[Any]]:
    """Run `args` with --dry-run, then with --yes; the plans each journaled."""
    dry = run_invoke(*args, "--dry-run", inventory=inv_path, timeout=timeout)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    dry_plans = journaled_plans(last_run(jdir))
    real = run_invoke(*args, "--yes", inventory=inv_path, timeout=timeout)
    assert real.returncode == 0, real.stdout + real.stderr
    return dry_plans, journaled_plans(last_run(jdir))


@pytest.fixture
def jdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "journal"
    monkeypatch.setenv(journalmod.ENV_DIR, str(d))
    return d


def test_priority_change_dry_run_is_the_run(lab: Lab, jdir: Path) -> None:
    primary = lab.current_primary().name
    node = next(n.name for n in lab.inv.nodes if n.name != primary)
    params = ["--param", f"node={node}", "--param", "priority=42", "--param", "expect=42"]
    dry, real = dry_then_real(jdir, lab.inv.path, "runbooks.run", TEST_PB, *params)
    assert dry == real
    assert [s for s, _, _ in real] == ["set-priority", "restore"]
    assert real[0][2] == [(node, "CONFIG SET replica-priority 42")]
    assert real[1][2] == [(node, "CONFIG SET replica-priority 100")]


def test_health_check_dry_run_is_the_run(lab: Lab, jdir: Path) -> None:
    dry, real = dry_then_real(jdir, lab.inv.path, "runbooks.run", "health-check")
    assert dry == real and [s for s, _, _ in real] == ["overview"]


class GatherCounter:
    def __init__(self) -> None:
        self.calls = 0
        self.real = factsmod.gather

    def __call__(self, *a: Any, **kw: Any) -> factsmod.ClusterFacts:
        self.calls += 1
        return self.real(*a, **kw)


@pytest.mark.parametrize("name", ["health-check", "priority-change"])
def test_one_gathering_per_guard_round_and_verify_poll(
    lab: Lab, jdir: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    primary = lab.current_primary().name
    node = next(n.name for n in lab.inv.nodes if n.name != primary)
    counter = GatherCounter()
    monkeypatch.setattr(factsmod, "gather", counter)
    pb = playbookmod.load(TEST_PB if name == "priority-change" else name)
    params = {"node": node, "priority": "42", "expect": "42"} if name != "health-check" else {}
    r = Runner(pb, lab.inv, params, yes=True, ask=False)
    assert r.run() == 0
    recs = journalmod.read(last_run(jdir))
    # Every gathering is a view the runner took: none inside a check, a plan or an apply.
    assert counter.calls == r.views_taken
    rounds = sum(1 for s in pb.steps if s.guard or s.action)
    rounds += sum(1 for x in recs if x["event"] == "apply" and x["action"] == "cluster.show_status")
    verify_steps = [s for s in pb.steps if s.verify]
    # start + finish + one per guard round + at least one per step that verifies
    assert r.views_taken >= 2 + rounds + len(verify_steps)
    # and a verify poll is one view for all of a step's checks: on a healthy lab every check
    # passes on the first poll, so exactly one view per verifying step
    assert r.views_taken == 2 + rounds + len(verify_steps), [
        (x["event"], x.get("step"), x.get("waited_s")) for x in recs if x["event"] == "verify"
    ]
    assert recs[-1]["views_taken"] == r.views_taken


def _run(tmp_path: Path, lab: Lab, name: str, *args: str) -> Path:
    d = tmp_path / name
    r = run_invoke(*args, inventory=lab.inv.path, env={journalmod.ENV_DIR: str(d)}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return d


def test_failover_manual_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """With --to and --via: steer (and its rival), the switch, the restore, all as shown."""
    inv = lab.inv
    old = lab.current_primary().name
    target = sorted(n.name for n in inv.nodes if n.name != old)[-1]
    via = inv.sentinels[0].name
    args = ("failover.manual", "--to", target, "--via", via)
    dry = journaled_plans(_run(tmp_path, lab, "dry", *args, "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", *args, "--yes"))
    assert [s for s, _, _ in dry] == ["steer", "switch", "restore-priority"], dry
    assert dry == real
    steer, switch, restore = (ops for _, _, ops in dry)
    assert (target, "CONFIG SET replica-priority 1") in steer
    assert (via, f"SENTINEL FAILOVER {inv.master_name}") in switch
    assert (target, f"CONFIG SET replica-priority {inv.settings.replica_priority}") in restore
    assert lab.current_primary().name == target  # the run did switch


def test_failover_automatic_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """failover.verify (read-only): the old primary's read and the log read, as shown."""
    f = factsmod.gather(lab.inv)
    old = sorted(n.name for n in f.nodes if n.role == "replica")[0]
    args = ("failover.verify", "--old", old)
    dry = journaled_plans(_run(tmp_path, lab, "dry", *args, "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", *args))
    assert dry == real
    assert dry == [
        ("old-primary", False, [(old, "INFO replication")]),
        ("timeline", False, [("sentinels", "read the Sentinel logs (last failover)")]),
    ]


def step_plans(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(step, [(target, command)]) of the step plans of one run (undo plans left out)."""
    return [(s, ops) for s, undo, ops in journaled_plans(path) if not undo]


def _runs(jdir: Path, procedure: str) -> dict[bool, Path]:
    """The journal of the dry run (True) and of the real run (False) of `procedure`."""
    out = {}
    for p in journalmod.runs(jdir):
        start = next(r for r in journalmod.read(p) if r["event"] == "start")
        if start["procedure"] == procedure:
            out[bool(start["dry_run"])] = p
    return out


def _rollback_inventory(lab: Lab, tmp_path: Path) -> Path:
    """The lab inventory with its own app env file (Sentinel mode), so the lab's is untouched."""
    data = yaml.safe_load(lab.inv.path.read_text())
    data["app"] = {"config_backend": "envfile", "env_file": str(tmp_path / "app.env")}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    appconfig.write_lab_env(inventory.load(path))
    return path


def _dry_then_real(task: str, procedure: str, inv: Path, jdir: Path) -> dict[bool, Path]:
    env: dict[str, Any] = {journalmod.ENV_DIR: str(jdir)}
    dry = run_invoke(task, "--dry-run", inventory=inv, env=env, timeout=180)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    real = run_invoke(task, "--yes", inventory=inv, env=env, timeout=180)
    assert real.returncode == 0, real.stdout + real.stderr
    runs = _runs(jdir, procedure)
    assert set(runs) == {True, False}
    return runs


def test_rollback_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    inv = _rollback_inventory(lab, tmp_path)
    runs = _dry_then_real("rollback", "rollback", inv, tmp_path / "journal")
    dry, real = step_plans(runs[True]), step_plans(runs[False])
    assert [s for s, _ in real] == [
        "preflight",
        "warm-sessions",
        "switch-config",
        "redeploy",
        "validate",
        "sentinel-intact",
        "report",
    ]
    assert all(ops for _, ops in real)  # every step shows what it does (the warm-up too)
    assert dry == real
    start = next(r for r in journalmod.read(runs[False]) if r["event"] == "start")
    assert sorted(start["inputs"]) == ["no_warm", "validate_wait", "yes"]


def test_rollback_undo_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    inv = _rollback_inventory(lab, tmp_path)
    env = {journalmod.ENV_DIR: str(tmp_path / "before")}
    first = run_invoke("rollback", "--yes", "--no-warm", inventory=inv, env=env, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr  # the app is on the single instance
    runs = _dry_then_real("rollback.undo", "rollback-undo", inv, tmp_path / "journal")
    dry, real = step_plans(runs[True]), step_plans(runs[False])
    assert len(real) == 7 and all(ops for _, ops in real)
    assert dry == real


def test_replica_rebuild_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """A healthy replica rebuilt with --force: the same seven operations, dry and real."""
    primary = lab.current_primary().name
    node = next(n.name for n in lab.inv.nodes if n.name != primary)
    args = ("replica.rebuild", "--node", node, "--force")
    plans = []
    for mode in ("--dry-run", "--yes"):
        jdir = tmp_path / mode.strip("-")
        env = {journalmod.ENV_DIR: str(jdir)}
        r = run_invoke(*args, mode, inventory=lab.inv.path, env=env, timeout=180)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        (run,) = journalmod.runs(jdir)
        recs = journalmod.read(run)
        assert all(x["dry_run"] == (mode == "--dry-run") for x in recs if x["event"] == "plan")
        plans.append(journaled_plans(run))
    dry, real = plans
    assert dry == real
    steps = {s: ops for s, _, ops in real}
    assert list(steps) == ["diagnose", "unpromotable", "restart", "full-sync", "restore"]
    assert steps["unpromotable"] == [
        (node, "CONFIG SET replica-priority 0"),
        (node, "CONFIG SET replica-announced no"),
    ]
    stop, start = steps["restart"]
    assert stop[0] == node and stop[1].startswith("stop (")
    assert start[1].startswith(f"start as a replica of {primary} with replica-priority 0")
    prio = lab.inv.settings.replica_priority
    assert steps["restore"][1:] == [
        (node, f"CONFIG SET replica-priority {prio}"),
        (node, "CONFIG SET replica-announced yes"),
        (node, "CONFIG REWRITE"),
    ]


def test_split_brain_dry_run_is_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolated old primary taking writes: dry run, then recover --yes; same plans, no loss."""
    jdir = tmp_path / "journal"
    monkeypatch.setenv("REDIS_HA_JOURNAL_DIR", str(jdir))
    lab = Lab(inventory.load(partition.write_partitionable_inventory(tmp_path / "lab")))
    inv = lab.inv
    try:
        lab.up(timeout=60)
        old = lab.current_primary()
        writer = scenarios.Writer(inv, old).start()  # a client that still reaches the old primary
        try:
            time.sleep(0.3)
            _, new = scenarios.partition_primary(lab, old)  # old still says it is primary
            time.sleep(1)
        finally:
            acked = writer.stop()
        assert acked, "the isolated primary acknowledged no write"

        dry = run_invoke("splitbrain.recover", "--dry-run", inventory=inv.path, timeout=120)
        assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
        real = run_invoke("splitbrain.recover", "--yes", inventory=inv.path, timeout=180)
        assert real.returncode == 0, real.stdout[-3000:] + real.stderr[-2000:]

        runs = sorted(p for p in jdir.glob("*-split-brain*.jsonl"))
        assert len(runs) == 2, runs
        planned = {(s, u): ops for s, u, ops in journaled_plans(runs[0])}
        assert journaled_plans(runs[0]) == journaled_plans(runs[1])
        # The plans are about this split: the old primary fenced, salvaged into and demoted.
        assert ("fence", False) in planned and planned[("fence", False)] == [
            (old.name, "CLIENT PAUSE 120000 WRITE")
        ]
        host, port = inv.node(new).announced
        assert (old.name, f"REPLICAOF {host} {port}") in planned[("demote", False)]

        # Every write the isolated primary acknowledged is on the authoritative primary.
        c = client(inv, inv.node(new), timeout=5)
        try:
            missing = [
                k
                for i in range(0, len(acked), 500)
                for k, v in zip(acked[i : i + 500], c.mget(acked[i : i + 500]), strict=True)
                if v is None
            ]
        finally:
            c.close()
        assert missing == [], f"{len(missing)} of {len(acked)} acknowledged writes lost"
    finally:
        partition.heal(lab)
        lab.down()
        assert partition.proxy_pid(lab) is None


def _call(lab: Lab, name: str, *args: str) -> Any:
    eps = {e.name: e for e in (*lab.inv.nodes, *lab.inv.sentinels)}
    c = client(lab.inv, eps[name], timeout=2.0)
    try:
        return c.execute_command(*args)
    finally:
        c.close()


def test_sentinel_repair_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """One Sentinel stopped, another made to forget the master: both back, as shown."""
    down, lost = lab.inv.sentinels[1].name, lab.inv.sentinels[2].name
    lab.stop(down, kill=True)
    _call(lab, lost, "SENTINEL", "REMOVE", lab.inv.master_name)
    dry = journaled_plans(_run(tmp_path, lab, "dry", "sentinel.repair", "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", "sentinel.repair", "--yes"))
    assert dry == real
    steps = {s: ops for s, _, ops in real}
    assert steps["start-down"] == [(down, "start (control backend, its own sentinel.conf)")]
    host, port = lab.current_primary().address.rsplit(":", 1)
    m, q = lab.inv.master_name, lab.inv.settings.quorum
    assert steps["monitor"][:2] == [
        (lost, f"SENTINEL MONITOR {m} {host} {port} {q}"),
        (lost, f"SENTINEL SET {m} auth-pass ***"),
    ]
    f = factsmod.gather(lab.inv)
    assert all(s.up and not s.error for s in f.sentinels), [(s.name, s.error) for s in f.sentinels]


def test_memory_pressure_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    p = lab.current_primary().name
    _call(lab, p, "CONFIG", "SET", "maxmemory", "100000")
    dry = journaled_plans(_run(tmp_path, lab, "dry", "memory.relieve", "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", "memory.relieve", "--yes"))
    assert dry == real
    steps = {s: ops for s, _, ops in real}
    assert steps["restore-limit"] == [(p, "CONFIG SET maxmemory 0"), (p, "CONFIG REWRITE")]


def test_writes_paused_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    p = lab.current_primary().name
    _call(lab, p, "CLIENT", "PAUSE", "60000", "WRITE")
    dry = journaled_plans(_run(tmp_path, lab, "dry", "writes.unpause", "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", "writes.unpause", "--yes"))
    assert dry == real == [("unpause", False, [(p, "CLIENT UNPAUSE")])]


def test_config_drift_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """A node setting and a Sentinel setting changed by hand: both put back, as shown."""
    node = next(n.name for n in lab.inv.nodes if n.name != lab.current_primary().name)
    s = lab.inv.sentinels[0].name
    m = lab.inv.master_name
    _call(lab, node, "CONFIG", "SET", "min-replicas-max-lag", "99")
    _call(lab, s, "SENTINEL", "SET", m, "parallel-syncs", "2")
    dry = journaled_plans(_run(tmp_path, lab, "dry", "config.converge", "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", "config.converge", "--yes"))
    assert dry == real
    steps = {st: ops for st, _, ops in real}
    want = lab.inv.settings
    assert sorted(steps["converge"]) == sorted(
        [
            (node, f"CONFIG SET min-replicas-max-lag {want.min_replicas_max_lag}"),
            (node, "CONFIG REWRITE"),
            (s, f"SENTINEL SET {m} parallel-syncs {want.parallel_syncs}"),
        ]
    )
