"""On the real lab, with each fault: the first finding of `incident --json` names the runbook
that fixes it. One shared lab, repaired after each test (by the procedure named, where it is a
quick one, else by `Lab.up` and the settings reset of the `lab` fixture)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from redis_ha import assessment, conn
from redis_ha import facts as factsmod
from redis_ha.health import assess
from redis_ha.lab import faults
from redis_ha.lab.cluster import Lab
from redis_ha.triage import triage

from .conftest import run_invoke

pytestmark = pytest.mark.lab


def first_finding(lab: Lab) -> dict[str, Any]:
    r = run_invoke("incident", "--json", inventory=lab.inv.path, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    d = json.loads(r.stdout)
    assert d["findings"], d
    top: dict[str, Any] = d["findings"][0]
    return top


def wait_switch(lab: Lab, old: str, timeout: float = 20) -> None:
    """Until every answering Sentinel names one primary other than `old`, only it claims to be
    primary and the other replica has synced from it (what on-call sees a second later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = factsmod.gather(lab.inv, detail=False)
        views = {s.primary_name for s in f.sentinels if s.up}
        claimed = {n.name for n in f.claimed_primaries()}
        synced = assess(lab.inv, f).in_sync_replicas
        one = len(views) == 1 and old not in views and None not in views and claimed == views
        if one and synced:
            return
        time.sleep(0.2)
    raise AssertionError(f"no failover away from {old} within {timeout} s")


def a_replica(lab: Lab) -> str:
    """A replica every Sentinel has heard from since it became one. An earlier test's old
    primary, restarted as a replica, is listed with `info-refresh` 0 until the Sentinels' next
    INFO: crashed before that, it is rightly read as the old primary down after a failover."""
    primary = lab.current_primary().name
    node = next(n.name for n in lab.inv.nodes if n.name != primary)
    deadline = time.monotonic() + 15
    while any(
        lab.inv.name_of(str(r.get("name", ""))) == node and str(r.get("info-refresh")) == "0"
        for s in factsmod.gather(lab.inv).sentinels
        for r in s.replicas
    ):
        assert time.monotonic() < deadline, f"the Sentinels never heard from {node}"
        time.sleep(0.2)
    return node


@pytest.mark.parametrize("kind", ["crash", "freeze"])
def test_primary_lost_then_failover_means_restart_not_rebuild(lab: Lab, kind: str) -> None:
    old = lab.current_primary().name
    faults.inject(lab.inv, kind, old)
    wait_switch(lab, old)
    top = first_finding(lab)
    assert top["diagnosis"] == "old-primary-down", top
    assert top["runbook"] == "failover-automatic" and top["step"] == "old-primary"
    assert "rebuild" not in top["command"] and f"--old {old}" in top["command"]


def test_replica_crash_names_replica_rebuild(lab: Lab) -> None:
    node = a_replica(lab)
    faults.inject(lab.inv, "crash", node)
    top = first_finding(lab)
    assert (top["diagnosis"], top["runbook"]) == ("replica-down", "replica-rebuild")
    assert top["command"] == f"invoke replica.rebuild --node {node}"


def test_diverged_replica_names_replica_rebuild(lab: Lab) -> None:
    node = a_replica(lab)
    faults.inject(lab.inv, "diverge", node)
    try:
        time.sleep(0.5)  # the link is seen down
        top = first_finding(lab)
        assert (top["diagnosis"], top["runbook"]) == ("replica-detached", "replica-rebuild"), top
        assert top["command"] == f"invoke replica.rebuild --node {node}"
    finally:  # the right password back (a rebuild is tested in test_replica_rebuild)
        conn.call(lab.inv, lab.inv.node(node), "CONFIG", "SET", "masterauth", lab.inv.password())


def test_restart_empty_primary_is_seen_before_the_replicas_resync(lab: Lab) -> None:
    """Judged in-process at once: within about a second the replicas have resynced empty and
    the danger has become the damage (nothing left to see)."""
    p = lab.current_primary()
    c = conn.client(lab.inv, p, timeout=2.0)
    try:
        c.mset({f"incident:{i}": "x" for i in range(200)})
        c.execute_command("WAIT", 2, 2000)
    finally:
        c.close()
    faults.restart_empty(lab, p)
    f = factsmod.gather(lab.inv)
    out = triage(lab.inv, f, assess(lab.inv, f))
    assert out and out[0].diagnosis == "restart-empty", [x.to_dict() for x in out]
    assert out[0].runbook == "safe-restart"


def test_sentinel_down_names_sentinel_repair_and_it_repairs(lab: Lab) -> None:
    s = lab.inv.sentinels[1].name
    faults.inject(lab.inv, "crash", s)
    top = first_finding(lab)
    assert (top["diagnosis"], top["runbook"]) == ("sentinels-down", "sentinel-repair"), top
    assert top["command"] == "invoke sentinel.repair"
    r = run_invoke("sentinel.repair", "--yes", inventory=lab.inv.path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.pid(s) is not None


def test_config_drift_names_config_drift(lab: Lab) -> None:
    node = a_replica(lab)
    conn.call(lab.inv, lab.inv.node(node), "CONFIG", "SET", "min-replicas-max-lag", "99")
    top = first_finding(lab)
    assert (top["diagnosis"], top["runbook"]) == ("config-drift", "config-drift"), top
    assert node in top["title"] and "min-replicas-max-lag" in top["why"]
    r = run_invoke("config.converge", "--yes", inventory=lab.inv.path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_tiny_maxmemory_noeviction_names_memory_pressure(lab: Lab) -> None:
    p = lab.current_primary()
    conn.call(lab.inv, p, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    conn.call(lab.inv, p, "CONFIG", "SET", "maxmemory", "100000")
    top = first_finding(lab)
    assert (top["diagnosis"], top["runbook"]) == ("out-of-memory", "memory-pressure"), top
    r = run_invoke("memory.relieve", "--yes", inventory=lab.inv.path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_client_pause_names_writes_paused(lab: Lab) -> None:
    p = lab.current_primary()
    conn.call(lab.inv, p, "CLIENT", "PAUSE", "60000", "WRITE")
    top = first_finding(lab)
    assert (top["diagnosis"], top["runbook"]) == ("writes-paused", "writes-paused"), top
    r = run_invoke("writes.unpause", "--yes", inventory=lab.inv.path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_paused_replica_is_seen_and_unpaused(lab: Lab) -> None:
    """A replica under CLIENT PAUSE would hold every write back once promoted."""
    primary = lab.current_primary().name
    replica = next(n for n in lab.inv.nodes if n.name != primary)
    conn.call(lab.inv, replica, "CLIENT", "PAUSE", "60000", "WRITE")
    f = factsmod.gather(lab.inv)
    assert [n.name for n in f.nodes if n.writes_paused] == [replica.name]
    r = run_invoke("writes.unpause", "--yes", inventory=lab.inv.path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CLIENT UNPAUSE" in r.stdout and replica.name in r.stdout, r.stdout
    assert not any(n.writes_paused for n in factsmod.gather(lab.inv).nodes)


@contextmanager
def writes(lab: Lab, prefix: str, *, value: int = 1000, pause_s: float = 0.005) -> Iterator[None]:
    """App-like writes to the primary in the background: 20 SETs of `value` bytes per round
    trip (a few MB/s on loopback), over 5000 keys under `prefix`."""
    stop = threading.Event()
    ep = lab.current_primary()

    def run() -> None:
        c = conn.client(lab.inv, ep, timeout=5.0)
        i = 0
        try:
            while not stop.is_set():
                p = c.pipeline(transaction=False)
                for _ in range(20):
                    i += 1
                    p.set(f"{prefix}{i % 5000}", "x" * value)
                p.execute(raise_on_error=False)
                time.sleep(pause_s)
        finally:
            c.close()

    t = threading.Thread(target=run, name="writes", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=10)


def test_full_sync_loop_is_told_from_one_sync_and_the_runbook_fix_ends_it(lab: Lab) -> None:
    """A real loop: 20 MB of sessions, writes at a few MB/s, the primary's replica output
    buffer limit (and backlog, its floor in Redis 7) at 128 kB; a replica restarted empty never
    finishes its sync. incident's second look sees the primary's full syncs pile up and names
    the loop (not a rebuild); the runbook's CONFIG SETs end it and the same look then does not."""
    p = lab.current_primary()
    node = a_replica(lab)
    c = conn.client(lab.inv, p, timeout=10.0)
    was = c.config_get("client-output-buffer-limit", "repl-backlog-size")
    try:
        for start in range(0, 20_000, 1000):
            c.mset({f"loop:fill:{i}": "x" * 1000 for i in range(start, start + 1000)})
        c.execute_command("WAIT", 2, 10_000)
        c.config_set("client-output-buffer-limit", "replica 128kb 0 0")
        c.config_set("repl-backlog-size", "128kb")
        with writes(lab, "loop:w:"):
            lab.stop(node, kill=True)
            # No persistence: empty, so a full sync. As a replica of the current primary
            # (its file may still say primary if it once was: that is restart-empty instead).
            lab.start_node(lab.inv.node(node), replicaof=lab.inv.node(p.name))
            top = first_finding(lab)
            assert (top["diagnosis"], top["runbook"], top["step"]) == (
                "full-sync-loop",
                "replica-rebuild",
                "full-sync-loop",
            ), top
            assert node in top["title"] and "rebuild" not in top["command"], top
            assert "131072 bytes" in top["why"], top  # the limit in force, said
            # The runbook's fix, live: the next attempt completes, with the writes still on.
            c.config_set("client-output-buffer-limit", "replica 256mb 64mb 60")
            c.config_set("repl-backlog-size", "64mb")
            lab.wait_ready(30)
            served = c.info("stats")["sync_full"]
            time.sleep(assessment.SECOND_LOOK_S)
            assert c.info("stats")["sync_full"] == served  # it stopped rising
    finally:
        c.config_set("client-output-buffer-limit", was["client-output-buffer-limit"])
        c.config_set("repl-backlog-size", was["repl-backlog-size"])
        for start in range(0, 20_000, 2000):
            c.unlink(*[f"loop:fill:{i}" for i in range(start, start + 2000)])
        c.unlink(*[f"loop:w:{i}" for i in range(5000)])
        c.close()
        lab.wait_ready(30)


def test_sentinel_frozen_past_the_tilt_trigger_is_seen_in_tilt(lab: Lab) -> None:
    """sentinel.c enters TILT when its timer sees more than 2000 ms pass between two runs
    (SENTINEL_TILT_TRIGGER), and stays 30 s: SIGSTOP for 3 s, SIGCONT, look at once."""
    s = lab.inv.sentinels[1].name
    try:
        lab.signal(s, signal.SIGSTOP)
        time.sleep(3.0)
        lab.signal(s, signal.SIGCONT)
        time.sleep(0.3)  # its timer runs (hz 10) and sees the jump
        top = first_finding(lab)
        assert (top["diagnosis"], top["runbook"], top["step"]) == (
            "sentinel-tilt",
            "sentinel-repair",
            "tilt",
        ), top
        assert s in top["title"]
    finally:  # a fresh process is not in TILT: the next test must not wait 30 s for it
        lab.signal(s, signal.SIGCONT)
        lab.stop(s, kill=True)


def test_primary_at_maxmemory_evicting_under_writes_names_memory_pressure(lab: Lab) -> None:
    """allkeys-lru with 1 MB of room above what the primary uses: writes of 1 kB values
    evict (evicted_keys rises); incident names memory-pressure, and its procedure relieves it."""
    p = lab.current_primary()
    c = conn.client(lab.inv, p, timeout=5.0)
    try:
        used = int(c.info("memory")["used_memory"])
        c.config_set("maxmemory-policy", "allkeys-lru")
        c.config_set("maxmemory", str(used + 1024 * 1024))
        with writes(lab, "evict:", pause_s=0.02):
            deadline = time.monotonic() + 20
            while int(c.info("stats")["evicted_keys"]) == 0:
                assert time.monotonic() < deadline, "no eviction within 20 s"
                time.sleep(0.1)
            top = first_finding(lab)
        assert (top["diagnosis"], top["runbook"]) == ("evicting", "memory-pressure"), top
        r = run_invoke("memory.relieve", "--yes", inventory=lab.inv.path, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        c.unlink(*[f"evict:{i}" for i in range(5000)])
        c.close()
