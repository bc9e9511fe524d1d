"""`invoke incident` on the real lab, as bots and as people: the questions, the screen, the
runbook offered and run, the incident log and the postmortem made from it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pexpect
import pytest

from redis_ha import incident_log
from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke, spawn_invoke

DOWN = "\x1b[B"


def test_incident_json_healthy_then_replica_crash(lab: Lab) -> None:
    r = run_invoke("incident", "--json", inventory=lab.inv.path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["healthy"] is True
    assert [(f["diagnosis"], f["severity"], f["runbook"]) for f in d["findings"]] == [
        ("healthy", "info", "failover-manual")
    ]

    primary = d["primary"]
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    lab.signal(replica, signal.SIGKILL)
    r = run_invoke("incident", "--json", inventory=lab.inv.path)
    assert r.returncode == 1, r.stdout  # degraded
    d = json.loads(r.stdout)
    top = d["findings"][0]
    assert top["runbook"] == "replica-rebuild" and top["step"] == "diagnose"
    assert top["command"] == f"invoke replica.rebuild --node {replica}"
    assert top["severity"] == "high"  # the other replica is now the last in-sync one


def test_incident_without_terminal_prints_next_command_and_logs(lab: Lab, tmp_path: Path) -> None:
    primary = lab.current_primary().name
    replica = next(n.name for n in lab.inv.nodes if n.name != primary)
    lab.signal(replica, signal.SIGKILL)
    env = {journalmod.ENV_DIR: str(tmp_path)}
    r = run_invoke("incident", "--app", "sessions lost", inventory=lab.inv.path, env=env)
    assert r.returncode == 1
    assert f"invoke replica.rebuild --node {replica}" in r.stdout
    assert "no terminal" in r.stdout
    (log,) = (tmp_path / incident_log.SUBDIR).glob("*.jsonl")
    recs = journalmod.read(log)
    assert [x["event"] for x in recs] == ["opened", "answer", "answer", "assessment", "closed"]
    assert recs[1]["answer"] == "sessions lost"
    assert recs[2]["answer"] == "not asked (no terminal)"  # never invented
    assert recs[3]["findings"][0]["diagnosis"] == "replica-down"


@pytest.mark.lab
def test_incident_interactive_asks_offers_runs_and_reports(lab: Lab, tmp_path: Path) -> None:
    """A person: answers both questions, reads the diagnosis (a Sentinel down), runs the offered
    runbook from the menu, confirms its step, sees the cluster healthy; then the postmortem."""
    down = lab.inv.sentinels[2].name
    lab.stop(down, kill=True)
    env = {journalmod.ENV_DIR: str(tmp_path), "TERM": "xterm"}
    child = spawn_invoke("incident", inventory=lab.inv.path, env=env, timeout=40)
    try:
        child.expect("What does the app show")
        child.send(DOWN)  # "errors on writes"
        child.send("\r")
        child.expect("A recent deploy or maintenance")
        child.send(DOWN * 2)  # "a Redis or Sentinel config change"
        child.send("\r")
        child.expect("What next")
        screen = child.before
        assert f"Sentinel(s) down: {down}" in screen
        assert "invoke sentinel.repair" in screen and "sentinel-repair (start-down)" in screen
        child.expect(r"1\. run the sentinel-repair runbook \(from step start-down\)")
        child.send("\r")  # the first choice
        child.expect(r"Run step 'Start the Sentinels that do not answer'")
        child.send("y")
        child.send("\r")
        while True:
            i = child.expect([r"Run step '[^']+'", "Nothing needs doing"], timeout=90)
            if i == 1:
                break
            child.send("y")
            child.send("\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert lab.pid(down) is not None

    (log,) = (tmp_path / incident_log.SUBDIR).glob("*.jsonl")
    recs = journalmod.read(log)
    answers = [x["answer"] for x in recs if x["event"] == "answer"]
    assert answers == [
        "errors on writes (OOM, NOREPLICAS, READONLY)",
        "a Redis or Sentinel config change",
    ]
    (end,) = [x for x in recs if x["event"] == "procedure-end"]
    assert end["runbook"] == "sentinel-repair" and end["exit_code"] == 0
    assert Path(end["journal"]).is_file()
    assert [x["level"] for x in recs if x["event"] == "assessment"][-1] == "healthy"

    r = run_invoke("incident.report", env={journalmod.ENV_DIR: str(tmp_path)})
    assert r.returncode == 0, r.stderr
    md = r.stdout
    assert md.startswith("# Incident ")
    for part in ("## What was seen", "## Impact window", "## Timeline (UTC)", "## Actions"):
        assert part in md
    assert "**a Redis or Sentinel config change**" in md
    assert "sentinel-repair: step start-down" in md  # from the procedure's own journal
    assert "`invoke sentinel.repair`: exit 0" in md
    assert f"- [ ] why: Sentinel(s) down: {down}" in md
