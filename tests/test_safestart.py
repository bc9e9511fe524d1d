"""safestart: the start decision (data-driven), its command line, and the rendered start units."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from redis_ha import facts as factsmod
from redis_ha import inventory, safestart, units
from redis_ha.facts import NodeFacts, SentinelFacts
from redis_ha.lab.binaries import Binaries
from redis_ha.lab.ports import free_ports

from .conftest import ROOT, run_invoke

ME, R2, R3 = "10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"


def sent(primary: str | None, up: bool = True) -> SentinelFacts:
    return SentinelFacts(name="s", address="x:26379", up=up, primary=primary)


def node(address: str, *, role: str = "replica", keys: int = 0, offset: int = 0) -> NodeFacts:
    return NodeFacts(name=address, address=address, up=True, role=role, keys=keys, offset=offset)


def down(address: str) -> NodeFacts:
    return NodeFacts(name=address, address=address, up=False, error="connection refused")


CASES = [
    # (why, sentinels, peers, bootstrap, mode, replicaof)
    (
        "Sentinels name another node: follow it",
        [sent(R2), sent(R2), sent(ME)],
        [node(R2, role="master", keys=5), node(R3, keys=5)],
        False,
        "replica",
        R2,
    ),
    (
        "the issue: Sentinels still name this empty node while replicas hold data",
        [sent(ME)] * 3,
        [node(R2, keys=5000, offset=90), node(R3, keys=5000, offset=100)],
        False,
        "handover",
        R3,
    ),
    (
        "Sentinels name this node, peers empty: nothing to lose",
        [sent(ME)] * 3,
        [node(R2), node(R3)],
        False,
        "primary",
        None,
    ),
    (
        "Sentinels name this node, every peer down too: nothing left to protect",
        [sent(ME)] * 3,
        [down(R2), down(R3)],
        False,
        "primary",
        None,
    ),
    (
        "brand-new cluster: no Sentinel yet, no peer up",
        [sent(None, up=False)] * 3,
        [down(R2), down(R3)],
        False,
        "configured",
        None,
    ),
    (
        "brand-new cluster: no Sentinel yet, the first node is up and primary",
        [sent(None, up=False)] * 3,
        [node(R2, role="master"), down(R3)],
        False,
        "replica",
        R2,
    ),
    (
        "no Sentinel answers, no primary, a replica holds data: never start as an empty primary",
        [sent(None, up=False)] * 3,
        [node(R2, keys=10, offset=5), node(R3, keys=10, offset=7)],
        False,
        "replica",
        R3,
    ),
    (
        "only one Sentinel names this node: no majority, follow the data",
        [sent(ME), sent(None, up=False), sent(None, up=False)],
        [node(R2, keys=10)],
        False,
        "replica",
        R2,
    ),
    (
        "bootstrap asked: no questions",
        [sent(ME)] * 3,
        [node(R2, keys=10)],
        True,
        "configured",
        None,
    ),
]


@pytest.mark.parametrize(
    "why,sentinels,peers,bootstrap,mode,replicaof", CASES, ids=[c[0] for c in CASES]
)
def test_decide(why, sentinels, peers, bootstrap, mode, replicaof):
    d = safestart.decide(ME, sentinels, peers, n_sentinels=3, bootstrap=bootstrap)
    assert (d.mode, d.replicaof) == (mode, replicaof), d.reason
    assert d.reason and "\n" not in d.reason


def test_decide_knows_this_node_by_its_announced_address_too():
    d = safestart.decide(
        ("127.0.0.1:7001", "127.0.0.1:9001"), [sent("127.0.0.1:9001")] * 3, [], n_sentinels=3
    )
    assert d.mode == "primary"
    assert safestart.same_addr("localhost:1", "127.0.0.1:1")


def test_final_argv_appends_the_role_last_so_it_wins_over_the_file():
    argv = ["redis-server", "r.conf"]
    d = safestart.Decision
    assert safestart.final_argv(argv, d("configured", None, ""), None) == argv
    assert safestart.final_argv(argv, d("primary", None, ""), None)[-3:] == [
        "--replicaof",
        "no",
        "one",
    ]
    out = safestart.final_argv(argv, d("replica", R2, ""), R2)
    assert out[-3:] == ["--replicaof", "10.0.0.2", "6379"]


def test_from_env_builds_the_cluster_without_an_inventory(monkeypatch):
    monkeypatch.setenv("REDIS_HA_SELF", ME)
    monkeypatch.setenv("REDIS_HA_SENTINELS", "10.0.0.4:26379, 10.0.0.5:26379,10.0.0.6:26379")
    monkeypatch.setenv("REDIS_HA_PEERS", f"{R2},{R3}")
    monkeypatch.setenv("REDIS_HA_MASTER_NAME", "sessions")
    monkeypatch.setenv("REDIS_HA_PASSWORD", "s3cret")
    inv, me = safestart.from_env(None, None, None, None, None, None)
    assert me.address == ME and [n.address for n in inv.nodes] == [ME, R2, R3]
    assert len(inv.sentinels) == 3 and inv.master_name == "sessions"
    assert inv.password() == "s3cret"


def _run_wrapper(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redis_ha.safestart", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "args,says",
    [
        (["--node", "redis-1", "--", "redis-server"], "--inventory and --node go together"),
        (["--inventory", "x.yaml", "--node", "redis-1"], "after '--'"),
        (["--", "redis-server"], "--self HOST:PORT"),
        (["--self", "nohost", "--sentinels", "a:1", "--", "redis-server"], "not host:port"),
        # a mistyped port must not read as "no Sentinel answered: cold start as configured"
        (
            ["--self", "127.0.0.1:6379", "--sentinels", "127.0.0.1:263790", "--", "x"],
            "not host:port",
        ),
        (["--inventory", "/nonexistent.yaml", "--node", "r", "--", "x"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, says):
    r = _run_wrapper(*args)
    assert r.returncode != 0
    assert says in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_wrapper_execs_redis_server_with_the_same_pid(tmp_path: Path, server_binaries: Binaries):
    """Nothing reachable (a cold start): starts as configured, and redis-server keeps our PID."""
    port, dead = free_ports(2)
    p = subprocess.Popen(
        [sys.executable, "-m", "redis_ha.safestart", "--self", f"127.0.0.1:{port}"]
        + ["--sentinels", f"127.0.0.1:{dead}", "--"]
        + [server_binaries.server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--dir", str(tmp_path), "--logfile", str(tmp_path / "redis.log")],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        c = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                info = c.info("server")
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server never came up"
                time.sleep(0.05)
        assert info["process_id"] == p.pid
        assert c.info("replication")["role"] == "master"
        c.close()
    finally:
        p.kill()
        p.wait(5)
    assert p.stderr is not None
    line = p.stderr.read().strip()
    assert "cold start" in line and line.count("\n") == 0


def test_units_start_redis_through_the_wrapper(tmp_path: Path):
    inv = inventory.load(ROOT / "inventories" / "example-production.yaml")
    files = units.render_units(inv, tmp_path)
    assert len(files) == 2 * len(inv.nodes)
    unit = (tmp_path / "redis-ha-redis-1.service").read_text()
    assert "Type=simple" in unit and "Restart=always" in unit
    start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    want = "-m redis_ha.safestart --inventory /etc/redis-ha/inventory.yaml --node redis-1 --"
    assert want in start
    assert start.endswith("/usr/bin/redis-server /etc/redis-ha/redis-1.conf")
    assert "EnvironmentFile=-/run/redis-ha/redis-1.env" in unit
    rail = (tmp_path / "redis-1.railway").read_text()
    assert "python -m redis_ha.safestart --password-env REDIS_PASSWORD -- redis-server" in rail
    assert "REDIS_HA_SELF=redis-1.railway.internal:6379" in rail
    assert "REDIS_HA_PEERS=redis-2.railway.internal:6379,redis-3.railway.internal:6379" in rail
    assert (tmp_path / "redis-1.railway").stat().st_mode & 0o077 == 0


def test_render_units_task_and_drill_refusal():
    prod = ROOT / "inventories" / "example-production.yaml"
    r = run_invoke("drill.restart-empty", inventory=prod)
    assert r.returncode != 0 and "not marked 'lab: true'" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_invoke("drill.restart-empty", "--wrapper", "maybe")
    assert r.returncode != 0 and "--wrapper must be one of" in r.stderr


def test_drill_dry_run_touches_nothing(lab_inv):
    before = {n.name: n.pid for n in factsmod.gather(lab_inv).nodes}
    r = run_invoke("drill.restart-empty", "--dry-run", inventory=lab_inv.path)
    assert r.returncode == 0, r.stderr
    assert "dry run: would load 5000 keys, SIGKILL the primary" in r.stdout
    assert "directly (no wrapper)" in r.stdout
    after = {n.name: n.pid for n in factsmod.gather(lab_inv).nodes}
    assert before == after


def test_when_no_failover_comes_it_starts_as_a_replica_never_as_an_empty_primary(
    monkeypatch, capsys
):
    """The fallback of the handover, with the I/O stubbed (the decision flow is what is tested)."""
    inv = inventory.load(ROOT / "inventories" / "example-production.yaml")
    me = inv.node("redis-1")
    r2, r3 = inv.node("redis-2"), inv.node("redis-3")
    views = [sent(me.address)] * 3
    peers = [node(r2.address, keys=10, offset=5), node(r3.address, keys=10, offset=9)]
    monkeypatch.setattr(safestart, "look", lambda inv, me: (views, peers))
    monkeypatch.setattr(safestart, "hand_over", lambda inv, me, t: (None, "NOGOODSLAVE"))
    monkeypatch.setattr(safestart.shutil, "which", lambda name: "/usr/bin/redis-server")
    seen = {}
    monkeypatch.setattr(safestart.os, "execv", lambda exe, argv: seen.update(argv=argv))
    safestart.run(inv, me, ["redis-server", "r.conf"], bootstrap=False, timeout=0.1)
    assert seen["argv"][-3:] == ["--replicaof", r3.host, str(r3.port)]
    line = capsys.readouterr().err
    assert "no failover" in line and "NOGOODSLAVE" in line and line.count("\n") == 1
