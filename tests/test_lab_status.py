"""The lab and `invoke status` / `health` / `config.*` against real processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import redis

from redis_ha import conn, inventory
from redis_ha.lab.cluster import Lab, pid_alive
from redis_ha.lab.ports import FAST_DOWN_AFTER_MS

from .conftest import run_invoke


def status_json(inv_path: Path) -> dict:
    r = run_invoke("status", "--json", inventory=inv_path, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_status_json_of_a_healthy_lab(lab: Lab) -> None:
    d = status_json(lab.inv.path)
    roles = sorted(n["role"] for n in d["nodes"])
    assert roles == ["master", "replica", "replica"]
    primary = d["primary"]
    assert primary in {n.name for n in lab.inv.nodes}
    replicas = [n for n in d["nodes"] if n["role"] == "replica"]
    assert all(r["link_up"] and r["replicating_from"] == primary for r in replicas)
    primary_addr = lab.inv.node(primary).address
    assert [s["up"] for s in d["sentinels"]] == [True, True, True]
    assert {s["primary"] for s in d["sentinels"]} == {primary_addr}
    assert d["quorum_ok"] is True and d["healthy"] is True and d["split_brain"] is False
    assert d["problems"] == []
    for key in ("master_name", "nodes", "sentinels"):
        assert key in d
    for n in d["nodes"]:
        assert set(n) >= {"name", "address", "up", "role", "replicating_from", "link_up"}
        assert "offset" in n and "lag_ms" in n


def test_second_lab_up_changes_nothing(lab: Lab) -> None:
    before = lab.running()
    r = run_invoke("lab.up", inventory=lab.inv.path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "nothing changed" in r.stdout
    assert lab.running() == before


def test_lab_sentinels_run_the_inventory_info_period(lab: Lab) -> None:
    """SENTINEL DEBUG INFO-PERIOD is not in sentinel.conf: the lab sets it on every start."""
    want = lab.inv.lab_sentinel_info_period_ms
    assert want == 1000
    for s in lab.inv.sentinels:
        c = conn.client(lab.inv, s, timeout=2.0)
        try:
            got = c.execute_command("SENTINEL", "DEBUG")
        finally:
            c.close()
        if not isinstance(got, dict):  # RESP2: a flat list of names and values
            got = dict(zip(got[::2], got[1::2], strict=True))
        period = {str(k.decode() if isinstance(k, bytes) else k): v for k, v in got.items()}
        assert int(period["INFO-PERIOD"]) == want, (s.name, period)


def test_frozen_replica_is_reported_down_quickly(lab: Lab) -> None:
    d = status_json(lab.inv.path)
    replica = next(n["name"] for n in d["nodes"] if n["role"] == "replica")
    lab.signal(replica, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        d = status_json(lab.inv.path)
        took = time.monotonic() - t0
    finally:
        lab.signal(replica, signal.SIGCONT)
    # The gathering itself is bounded by the 0.5 s timeout; the whole process (Python start-up
    # included) gets a generous bound, since CI shares its two cores.
    assert d["elapsed_ms"] < 1500, f"gathering took {d['elapsed_ms']} ms with a frozen node"
    assert took < 5.0, f"status took {took:.2f} s with a frozen node"
    node = next(n for n in d["nodes"] if n["name"] == replica)
    assert node["up"] is False
    assert d["healthy"] is False
    assert any(replica in p and "down" in p for p in d["problems"])


def test_health_through_a_primary_crash_and_failover(lab: Lab) -> None:
    path = lab.inv.path
    assert run_invoke("health", inventory=path).returncode == 0
    old = status_json(path)["primary"]
    lab.signal(old, signal.SIGKILL)
    r = run_invoke("health", inventory=path)
    assert r.returncode == 2, r.stdout
    assert f"{old}" in r.stdout and "unreachable" in r.stdout
    deadline = time.monotonic() + 30
    new = None
    while time.monotonic() < deadline:
        d = status_json(path)
        if d["primary"] and d["primary"] != old:
            new = d["primary"]
            break
        time.sleep(0.3)
    assert new, "Sentinel did not fail over within 30 s"
    # The crashed node is still down: degraded, not down.
    assert run_invoke("health", inventory=path).returncode == 1
    lab.up(timeout=30)  # brings the old primary back, as a replica of the new one
    r = run_invoke("health", inventory=path)
    assert r.returncode == 0, r.stdout
    d = status_json(path)
    assert d["primary"] == new
    assert next(n for n in d["nodes"] if n["name"] == old)["replicating_from"] == new


def test_config_drift_detects_a_changed_setting(lab: Lab) -> None:
    r = run_invoke("config.drift", inventory=lab.inv.path)
    assert r.returncode == 0, r.stdout + r.stderr
    node = lab.inv.nodes[1]
    c = conn.client(lab.inv, node)
    try:
        c.config_set("min-replicas-max-lag", "30")
        r = run_invoke("config.drift", inventory=lab.inv.path)
        assert r.returncode == 1
        assert f"{node.name}: min-replicas-max-lag is '30', inventory says '10'" in r.stdout
    finally:
        c.config_set("min-replicas-max-lag", "10")
        c.close()


def test_config_drift_detects_a_changed_sentinel_setting(lab: Lab) -> None:
    s = lab.inv.sentinels[0]
    m = lab.inv.master_name
    c = conn.client(lab.inv, s)
    try:
        c.execute_command("SENTINEL", "SET", m, "parallel-syncs", "2")
        r = run_invoke("config.drift", inventory=lab.inv.path)
        assert r.returncode == 1
        assert f"{s.name}: parallel-syncs is '2', inventory says '1'" in r.stdout
    finally:
        want = str(lab.inv.settings.parallel_syncs)
        c.execute_command("SENTINEL", "SET", m, "parallel-syncs", want)
        c.close()


def test_config_render_writes_private_files(lab: Lab, tmp_path: Path) -> None:
    r = run_invoke("config.render", "--out", str(tmp_path / "out"), inventory=lab.inv.path)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(f"{e.name}.conf" for e in (*lab.inv.nodes, *lab.inv.sentinels))
    r1 = (tmp_path / "out" / "redis-1.conf").read_text()
    assert "min-replicas-to-write 1" in r1 and 'save ""' in r1 and "replicaof" not in r1
    assert "replicaof" in (tmp_path / "out" / "redis-2.conf").read_text()
    s1 = (tmp_path / "out" / "sentinel-1.conf").read_text()
    assert f"sentinel down-after-milliseconds mymaster {FAST_DOWN_AFTER_MS}" in s1
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "redis-1.conf").st_mode)
    assert mode == 0o600
    assert lab.inv.password() not in r.stdout


def test_wrong_password_is_one_clear_line(lab: Lab, tmp_path: Path) -> None:
    text = lab.inv.path.read_text().replace(
        f"password_file: {lab.inv.auth.password_file}", "password_env: REDIS_HA_TEST_PW"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert f"password_file: {lab.inv.auth.password_file}" in lab.inv.path.read_text()
    r = run_invoke("status", inventory=bad, env={"REDIS_HA_TEST_PW": "wrong"})
    assert "authentication failed" in r.stdout
    assert "check the password in $REDIS_HA_TEST_PW" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    r = run_invoke("health", inventory=bad, env={"REDIS_HA_TEST_PW": "wrong"})
    assert r.returncode == 3, r.stdout  # unknown: we could not look, which is not "down"
    assert "UNKNOWN" in r.stdout and "DOWN" not in r.stdout and " is down" not in r.stdout


def test_lab_down_leaves_no_process(fresh_lab: Lab) -> None:
    fresh_lab.up(timeout=60)
    pids = list(fresh_lab.running().values())
    assert len(pids) == 7
    r = run_invoke("lab.down", inventory=fresh_lab.inv.path)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)
    assert not fresh_lab.dir.exists()
    for ep in fresh_lab.inv.nodes:
        c = redis.Redis(host=ep.host, port=ep.port, socket_connect_timeout=0.2)
        try:
            c.ping()
            raise AssertionError(f"{ep.name} still answers")
        except redis.ConnectionError:
            pass


def test_missing_binaries_say_how_to_install(tmp_path: Path) -> None:
    from redis_ha.lab.ports import write_lab_inventory

    path = write_lab_inventory(tmp_path)
    # Redis, the default: no server setting (the Valkey leg sets one), nothing on PATH.
    env = {"PATH": str(tmp_path), "REDIS_HA_SERVER": "", "REDIS_HA_SERVER_BIN": ""}
    r = run_invoke("lab.up", inventory=path, env=env)
    assert r.returncode != 0
    assert "apt-get install -y redis-server redis-sentinel" in r.stderr
    assert "Traceback" not in r.stderr
    assert not Lab(inventory.load(path)).running()


def test_lab_tasks_refuse_a_non_lab_inventory(tmp_path: Path) -> None:
    from redis_ha.lab.ports import lab_inventory_dict

    d = lab_inventory_dict(tmp_path)
    d["lab"] = False
    import yaml

    p = tmp_path / "prod.yaml"
    p.write_text(yaml.safe_dump(d))
    r = run_invoke("lab.up", inventory=p)
    assert r.returncode != 0 and "not marked 'lab: true'" in r.stderr
