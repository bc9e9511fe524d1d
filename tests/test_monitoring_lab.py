"""Monitoring against real processes: watch under load and through a failover, the heartbeat
while writes are paused or refused, capacity against INFO, health's UNKNOWN and textfile.

The shared lab has fast Sentinel timings (down-after 2000 ms); nothing here depends on them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from redis_ha import heartbeat
from redis_ha import watch as watchmod
from redis_ha.conn import client
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.traffic import Traffic

from .conftest import ROOT, run_invoke, spawn_invoke

pytestmark = pytest.mark.lab


def watch_once(inv: Inventory, *extra: str) -> dict[str, Any]:
    r = run_invoke("watch", "--once", "--json", *extra, inventory=inv.path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def primary_client(lab: Lab):
    return client(lab.inv, lab.current_primary(), timeout=2.0)


def test_watch_once_json_gives_each_replica_lag_ms_under_load(lab: Lab) -> None:
    """At 1000 ops/s on loopback every replica's heartbeat lag is well under 100 ms."""
    t = Traffic(lab.inv, rate=1000, keys=2000, prefix="watch-test:")
    t.start()
    try:
        time.sleep(1.0)
        frames = [watch_once(lab.inv) for _ in range(3)]
    finally:
        rep = t.stop()
    assert rep.ops_per_s > 800 and rep.failed == 0, rep.errors
    for f in frames:
        assert f["level"] == "healthy" and f["heartbeat"]["state"] == "ok", f["heartbeat"]
        assert len(f["replicas"]) == 2
        for r in f["replicas"]:
            assert r["lag_source"] == "heartbeat", r
            assert 0 <= r["lag_ms"] < 100, r
        primary = next(n for n in f["nodes"] if n["primary"])
        assert primary["ops_per_s"] > 0 and primary["clients"] >= 1
        assert primary["hit_rate"] is not None and primary["used_memory"] > 0


def test_watch_keeps_updating_through_failover_manual(lab: Lab) -> None:
    """The watch streams frames while `failover.manual` runs in another process, and records
    the Sentinels' +switch-master as it happens."""
    inv = lab.inv
    old = lab.current_primary().name
    argv = [sys.executable, "-m", "invoke", "watch", "--json", "--interval", "0.3"]
    argv += ["--duration", "60", "--inventory", str(inv.path)]
    env = {**os.environ, "NO_COLOR": "1"}
    w = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    frames: list[tuple[float, dict[str, Any]]] = []

    def read() -> None:
        assert w.stdout is not None
        for line in w.stdout:
            frames.append((time.monotonic(), json.loads(line)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while len(frames) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(frames) >= 2, w.stderr.read() if w.poll() is not None else "no frames"
        t_start = time.monotonic()
        r = run_invoke("failover.manual", "--yes", inventory=inv.path, timeout=90)
        t_end = time.monotonic()
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if frames[-1][1]["primary"] not in (None, old) and any(
                e["name"] == "+switch-master" for _, f in frames for e in f["events"]
            ):
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        w.send_signal(signal.SIGTERM)
        rc = w.wait(timeout=20)
        reader.join(timeout=5)
    assert rc == 0, w.stderr.read() if w.stderr else ""
    during = [t for t, _ in frames if t_start <= t <= t_end]
    assert len(during) >= 3, f"{len(during)} frames in {t_end - t_start:.1f} s of failover"
    arrivals = [t for t, _ in frames]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert max(gaps) < 2.0, gaps  # never stalled on a paused or demoted node
    switches = [e for _, f in frames for e in f["events"] if e["name"] == "+switch-master"]
    assert switches and all(inv.master_name in e["text"] for e in switches)
    assert len({e["sentinel"] for e in switches}) >= 2  # the feed listens to every Sentinel
    assert frames[0][1]["primary"] == old
    assert frames[-1][1]["primary"] not in (None, old)
    states = [f["heartbeat"]["state"] for _, f in frames]
    assert states[-1] == "ok"


def test_heartbeat_while_writes_are_paused(lab: Lab) -> None:
    """A paused primary: the round says so in time, lag falls back to offsets, and the blocked
    heartbeat is dropped rather than run when the pause ends.

    The pause stays under down-after, as failover.manual's does: Sentinel's PING queues behind
    its own paused PUBLISH on the same link, so a longer pause makes the Sentinels fail over.
    """
    pause_ms = lab.inv.settings.down_after_ms - 300
    c = primary_client(lab)
    key = heartbeat.key(lab.inv)
    w = watchmod.Watcher(lab.inv, feed=False)
    try:
        c.set("watch-test:seed", "1")
        assert w.frame()["heartbeat"]["state"] == "ok"  # connections made, a beat to compare
        before = c.get(key)
        c.execute_command("CLIENT", "PAUSE", pause_ms, "WRITE")
        t0 = time.monotonic()
        f = w.frame()
        took = time.monotonic() - t0
        assert took < pause_ms / 1000, took  # the frame did not wait for the pause to end
        assert f["heartbeat"]["state"] == "paused", f["heartbeat"]
        assert "writes paused" in f["heartbeat"]["note"]
        assert f["replicas"] and all(r["lag_source"] == "offsets" for r in f["replicas"])
        assert all(
            r["lag_note"].startswith("writes paused: lag from offsets") for r in f["replicas"]
        )
        time.sleep(max(0.0, pause_ms / 1000 + 0.3 - (time.monotonic() - t0)))
        assert c.get(key) == before  # nothing queued behind the pause
        assert w.frame()["heartbeat"]["state"] == "ok"
    finally:
        c.execute_command("CLIENT", "UNPAUSE")
        c.close()
        w.close()


def test_heartbeat_when_writes_are_refused(lab: Lab) -> None:
    c = primary_client(lab)
    try:
        c.set("watch-test:seed", "1")
        c.config_set("min-replicas-to-write", 3)  # more than the two replicas there are
        f = watch_once(lab.inv)
        assert f["heartbeat"]["state"] == "refused", f["heartbeat"]
        assert "NOREPLICAS" in f["heartbeat"]["note"]
        assert all(r["lag_source"] == "offsets" for r in f["replicas"])
    finally:
        c.config_set("min-replicas-to-write", lab.inv.settings.min_replicas_to_write)
        c.close()


def test_no_heartbeat_writes_nothing_and_says_where_lag_comes_from(lab: Lab) -> None:
    c = primary_client(lab)
    key = heartbeat.key(lab.inv)
    try:
        c.set("watch-test:seed", "1")
        c.delete(key)
        f = watch_once(lab.inv, "--no-heartbeat")
        assert f["heartbeat"]["state"] == "off"
        for r in f["replicas"]:
            assert r["lag_source"] == "offsets"
            assert r["lag_note"].startswith("heartbeat off: lag from offsets")
        assert c.exists(key) == 0
    finally:
        c.close()


def test_an_empty_primary_is_never_given_a_heartbeat(lab: Lab) -> None:
    """Writing to a primary that holds nothing would hide an empty restart."""
    c = primary_client(lab)
    try:
        c.flushall()
        f = watch_once(lab.inv)
        assert f["heartbeat"]["state"] == "empty", f["heartbeat"]
        assert c.dbsize() == 0
    finally:
        c.close()


def _info(inv: Inventory) -> dict[str, dict[str, Any]]:
    out = {}
    for ep in inv.nodes:
        c = client(inv, ep, timeout=2.0)
        try:
            out[ep.name] = {**c.info("all"), "dbsize": c.dbsize()}
        finally:
            c.close()
    return out


def test_capacity_figures_match_the_nodes_info(lab: Lab) -> None:
    c = primary_client(lab)
    try:
        c.mset({f"cap-test:{i}": "x" * 100 for i in range(500)})
    finally:
        c.close()
    time.sleep(0.3)  # replicated
    before = _info(lab.inv)
    r = run_invoke("capacity", "--json", "--window", "0.5", inventory=lab.inv.path)
    after = _info(lab.inv)
    assert r.returncode == 0, r.stderr
    cap = json.loads(r.stdout)
    assert {n["name"] for n in cap["nodes"]} == {ep.name for ep in lab.inv.nodes}

    def between(v: float, field: str, name: str, slack: float = 0.0) -> None:
        """Within the two INFO readings taken around the task (plus `slack` of their spread)."""
        lo, hi = sorted((float(before[name][field]), float(after[name][field])))
        assert lo * (1 - slack) <= v <= hi * (1 + slack), (name, field, v, lo, hi)

    for n in cap["nodes"]:
        name = n["name"]
        b, a = before[name], after[name]
        assert n["maxmemory"] == a["maxmemory"] == b["maxmemory"]
        assert n["keys"] == a["dbsize"] == b["dbsize"]
        assert n["evicted_keys"] == a["evicted_keys"]
        assert n["backlog_bytes"] == a["repl_backlog_size"]
        # used memory moves by tens of KB with every client's buffers (the task's own too: 49 KB
        # over the later reading was seen on Valkey 8.1 on a lab of 1.7 MB)
        between(n["used_memory"], "used_memory", name, slack=0.05)
        between(n["used_memory_peak"], "used_memory_peak", name, slack=0.05)
        between(n["fragmentation"], "mem_fragmentation_ratio", name, slack=0.05)
        hits = (b["keyspace_hits"], a["keyspace_hits"])
        misses = (b["keyspace_misses"], a["keyspace_misses"])
        if sum(hits) + sum(misses):
            rates = [h / (h + m) for h, m in zip(hits, misses, strict=True) if h + m]
            assert min(rates) - 1e-4 <= n["hit_rate"] <= max(rates) + 1e-4
        if a["role"] == "master":
            assert n["write_rate_bps"] is not None and n["backlog_covers_s"] is not None
            assert n["full_resync_after_disconnect"] is False
    assert cap["recommendations"]  # the lab has no maxmemory: says so


def _bad_password_inventory(lab: Lab, tmp_path: Path) -> Path:
    text = lab.inv.path.read_text().replace(
        f"password_file: {lab.inv.auth.password_file}", "password_env: REDIS_HA_TEST_PW"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    return bad


def test_wrong_password_is_unknown_not_down(lab: Lab, tmp_path: Path) -> None:
    bad = _bad_password_inventory(lab, tmp_path)
    env = {"REDIS_HA_TEST_PW": "wrong-password-value"}
    r = run_invoke("health", inventory=bad, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stdout
    assert lines[0].startswith("UNKNOWN") and "$REDIS_HA_TEST_PW" in lines[0]
    assert "authentication failed" in lines[0]
    assert "down" not in r.stdout.lower() and "Traceback" not in r.stderr
    assert "wrong-password-value" not in r.stdout + r.stderr
    r = run_invoke("health", "--json", inventory=bad, env=env)
    assert r.returncode == 3
    obj = json.loads(r.stdout)
    assert obj["level"] == "unknown" and obj["exit"] == 3
    assert "$REDIS_HA_TEST_PW" in obj["check"] and "credentials" in obj["error"]


def test_no_password_at_all_is_unknown_and_says_so(lab: Lab, tmp_path: Path) -> None:
    """NOAUTH on every node: the inventory names no password source."""
    lines = [
        ln
        for ln in lab.inv.path.read_text().splitlines()
        if not ln.startswith("auth:") and "password_file:" not in ln
    ]
    bare = tmp_path / "noauth.yaml"
    bare.write_text("\n".join(lines) + "\n")
    r = run_invoke("health", inventory=bare)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "authentication required" in r.stdout
    assert "neither auth.password_env nor auth.password_file" in r.stdout


def test_bad_inventory_is_unknown_with_an_error_object(tmp_path: Path) -> None:
    r = run_invoke("health", "--json", inventory=tmp_path / "missing.yaml")
    assert r.returncode == 3
    obj = json.loads(r.stdout)
    assert obj["level"] == "unknown" and "inventory file not found" in obj["error"]
    r = run_invoke("health", inventory=tmp_path / "missing.yaml")
    assert r.returncode == 3 and r.stdout.startswith("UNKNOWN")


def test_health_writes_a_textfile_for_node_exporter(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "redis_ha.prom"
    r = run_invoke("health", "--prometheus", str(out), inventory=lab.inv.path)
    assert r.returncode == 0, r.stdout + r.stderr
    fams = {f.name: f for f in text_string_to_metric_families(out.read_text())}
    assert [s.value for s in fams["redis_ha_health_level"].samples] == [0.0]
    up = {s.labels["node"]: s.value for s in fams["redis_up"].samples}
    assert up == {ep.name: 1.0 for ep in lab.inv.nodes}
    assert fams["redis_ha_split_brain"].samples[0].value == 0.0
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically
    r = run_invoke("health", "--prometheus", "/nonexistent-dir/x.prom", inventory=lab.inv.path)
    assert r.returncode == 1 and "cannot write /nonexistent-dir/x.prom" in r.stderr
    assert "Traceback" not in r.stderr


def test_watch_screen_at_a_terminal(lab: Lab) -> None:
    """The rich live screen at a real terminal: frames refresh until --duration, then exit 0."""
    import pexpect

    c = primary_client(lab)
    try:
        c.set("watch-test:seed", "1")
    finally:
        c.close()
    child = spawn_invoke("watch", "--interval", "0.3", "--duration", "3", inventory=lab.inv.path)
    try:
        child.expect(pexpect.EOF)
        screen = child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, screen[-2000:]
    assert screen.count("Redis nodes (mymaster)") >= 3  # redrawn frame after frame
    assert "Sentinel events (pub/sub, newest last)" in screen
    assert "heartbeat: ok" in screen and " ms" in screen
    r = run_invoke("watch", "--once", inventory=lab.inv.path)  # no terminal: one plain frame
    assert r.returncode == 0 and r.stdout.count("Redis nodes (mymaster)") == 1
