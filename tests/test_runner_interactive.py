"""An operator at a real terminal (pexpect): the screen shows the runbook text, the guards and a
prompt that defaults to No for a changing step; a crashed run is resumed from where it died."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pexpect
import pytest

from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab

from .conftest import ROOT, run_invoke
from .test_runner import PB, events, priority, records, replica_of, standard_priorities


def spawn(lab: Lab, jdir: Path, node: str, *extra: str) -> pexpect.spawn:
    argv = ["-m", "invoke", "runbooks.run", PB, "--inventory", str(lab.inv.path)]
    argv += ["--param", f"node={node}", "--param", "priority=42", "--param", "expect=42", *extra]
    env = {**os.environ, journalmod.ENV_DIR: str(jdir), "TERM": "xterm", "COLUMNS": "160"}
    return pexpect.spawn(
        sys.executable,
        argv,
        cwd=str(ROOT),
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 160),
    )


@pytest.fixture
def jdir(tmp_path: Path) -> Path:
    return tmp_path / "journal"


def test_operator_answers_prompts(lab: Lab, jdir: Path) -> None:
    node = replica_of(lab)
    primary = lab.current_primary().name
    c = spawn(lab, jdir, node)
    try:
        c.expect(f"primary: +{primary}")
        c.expect("Step 1/4: Preflight")
        c.expect(f"guard node.not_primary: {node} is not a primary")
        c.expect("Step 2/4: Set the replica priority")
        c.expect("The previous value is kept so that the change can be undone")
        c.expect(r"Run step 'Set the replica priority' \(node.set_config\)\?")
        c.expect("quit now")
        assert "skip this step" not in c.before  # set-priority is not skippable
        c.send("y")
        c.send("\r")
        c.expect(f"{node}: replica-priority 100 -> 42")
        c.expect("verify node.config_is")
        c.expect("Step 4/4: Restore the priority")
        c.expect(r"Run step 'Restore the priority' \(node.restore_config\)\?")
        c.expect("skip this step")  # restore is
        c.expect("quit now")
        c.send("\r")  # Enter takes the default, which is No for a changing step
        c.expect(r"Undo the completed steps in reverse order \(set-priority\)\?")
        c.send("y")
        c.send("\r")
        c.expect(f"undo set-priority \\(node.restore_config\\): {node}: replica-priority 42 -> 100")
        c.expect("STOPPED")
        c.expect(pexpect.EOF)
    finally:
        c.close(force=True)
    assert c.exitstatus == 3
    assert priority(lab.inv, node) == "100"
    recs = records(jdir)
    answers = [(a["step"], a["answer"]) for a in events(recs, "answer")]
    assert answers == [("set-priority", "yes"), ("restore", "no"), (None, "undo")]


def test_crashed_run_is_resumed(lab: Lab, jdir: Path) -> None:
    """kill -9 at the last prompt: the cluster keeps priority 42 and the dead run's lock; --resume
    takes its own lock over, skips the done steps and restores the saved value."""
    node = replica_of(lab)
    c = spawn(lab, jdir, node)
    try:
        c.expect(r"Run step 'Set the replica priority'")
        c.expect("quit now")
        c.send("y")
        c.send("\r")
        c.expect(r"Run step 'Restore the priority'")
        os.kill(c.pid, signal.SIGKILL)
        c.expect(pexpect.EOF)
    finally:
        c.close(force=True)
    assert priority(lab.inv, node) == "42"
    run_id = journalmod.runs(jdir)[0].stem
    assert journalmod.summary(records(jdir))["result"] == "unfinished"

    r = run_invoke(
        "runbooks.run",
        PB,
        "--yes",
        "--resume",
        "latest",
        inventory=lab.inv.path,
        env={journalmod.ENV_DIR: str(jdir)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done in the earlier run" in r.stdout
    assert priority(lab.inv, node) == "100"
    recs = records(jdir)  # the crashed run's journal, continued
    assert journalmod.runs(jdir)[0].stem == run_id
    assert events(recs, "resume")[0]["from_step"] == "restore"
    assert events(recs, "lock")[-1]["mode"] == "cluster+file"
    assert events(recs, "end")[-1]["result"] == "completed"


_ = standard_priorities  # autouse: every test here starts from replica-priority 100
