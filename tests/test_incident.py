"""`invoke incident` on the real lab: healthy, then a crashed replica, as bots and as people."""

from __future__ import annotations

import json
import signal

import pexpect

from redis_ha.lab.cluster import Lab

from .conftest import run_invoke, spawn_invoke


def test_incident_json_healthy_then_replica_crash(lab: Lab) -> None:
    r = run_invoke("incident", "--json", inventory=lab.inv.path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["healthy"] is True and d["findings"] == []

    primary = d["primary"]
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    lab.signal(replica, signal.SIGKILL)
    r = run_invoke("incident", "--json", inventory=lab.inv.path)
    assert r.returncode == 1, r.stdout  # degraded
    d = json.loads(r.stdout)
    top = d["findings"][0]
    assert top["runbook"] == "replica-rebuild"
    assert top["command"] == f"invoke replica.rebuild --node {replica}"
    assert top["severity"] == "high"  # the other replica is now the last in-sync one


def test_incident_without_terminal_prints_next_command(lab: Lab) -> None:
    primary = lab.current_primary().name
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    lab.signal(replica, signal.SIGKILL)
    r = run_invoke("incident", inventory=lab.inv.path)
    assert r.returncode == 1
    assert f"invoke replica.rebuild --node {replica}" in r.stdout
    assert "no terminal" in r.stdout


def test_incident_interactive_offers_the_runbook(lab: Lab) -> None:
    primary = lab.current_primary().name
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    lab.signal(replica, signal.SIGKILL)
    child = spawn_invoke("incident", inventory=lab.inv.path)
    try:
        child.expect("What next")
        screen = child.before
        assert f"replica {replica} is not in sync" in screen
        child.expect("run the replica-rebuild runbook")
        # Move to "quit" (last choice) and accept it.
        for _ in range(2):
            child.send("\x1b[B")
        child.send("\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
