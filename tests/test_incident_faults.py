"""On the real lab, with each fault: the first finding of `incident --json` names the runbook
that fixes it. One shared lab, repaired after each test (by the procedure named, where it is a
quick one, else by `Lab.up` and the settings reset of the `lab` fixture)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from redis_ha import conn
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
    primary = lab.current_primary().name
    return next(n.name for n in lab.inv.nodes if n.name != primary)


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
