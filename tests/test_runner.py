"""The runner end to end against the real lab: dry run, --yes, refused guard, undo, resume,
and the health-check procedure. The test procedure changes `replica-priority` on a replica
(tests/data/playbooks/priority-change.yaml), which is harmless and easy to read back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from redis_ha import facts as factsmod
from redis_ha import journal as journalmod
from redis_ha.conn import call
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab

from .conftest import ROOT, run_invoke

PB = str(ROOT / "tests" / "data" / "playbooks" / "priority-change.yaml")


@pytest.fixture
def jdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "journal"
    monkeypatch.setenv(journalmod.ENV_DIR, str(d))
    return d


@pytest.fixture(autouse=True)
def standard_priorities(lab: Lab) -> None:
    """replica-priority back to the inventory's value on every node: other tests (a failover
    steering Sentinel) may leave another one, and these tests read it back."""
    reset_priorities(lab)


def reset_priorities(lab: Lab) -> None:
    want = str(lab.inv.settings.replica_priority)
    for n in lab.inv.nodes:
        call(lab.inv, n, "CONFIG", "SET", "replica-priority", want)


def replica_of(lab: Lab) -> str:
    primary = lab.current_primary().name
    return next(n.name for n in lab.inv.nodes if n.name != primary)


def priority(inv: Inventory, node: str) -> str:
    res = call(inv, inv.node(node), "CONFIG", "GET", "replica-priority")
    return str(res["replica-priority"] if isinstance(res, dict) else res[1])


def run(lab: Lab, jdir: Path, *args: str, **params: str) -> subprocess.CompletedProcess[str]:
    argv = ["runbooks.run", PB, *args]
    for k, v in params.items():
        argv += ["--param", f"{k}={v}"]
    return run_invoke(*argv, inventory=lab.inv.path, env={journalmod.ENV_DIR: str(jdir)})


def records(jdir: Path) -> list[dict[str, Any]]:
    runs = journalmod.runs(jdir)
    assert len(runs) == 1, runs
    return journalmod.read(runs[0])


def events(recs: list[dict[str, Any]], event: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in recs if r["event"] == event and all(r.get(k) == v for k, v in match.items())]


def shape(inv: Inventory) -> dict[str, Any]:
    """What a procedure could change: roles, replication sources, settings, keys (not offsets)."""
    f = factsmod.gather(inv)
    return {
        n.name: (n.role, n.replicating_from, n.config, n.keys, n.replica_priority) for n in f.nodes
    } | {s.name: (s.primary_name, s.config_epoch, s.config) for s in f.sentinels}


def test_health_check_procedure(lab: Lab, jdir: Path) -> None:
    r = run_invoke("check", inventory=lab.inv.path, env={journalmod.ENV_DIR: str(jdir)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Every replica is in sync with the primary" in r.stdout
    assert "COMPLETED" in r.stdout
    recs = records(jdir)
    assert [e["step"] for e in events(recs, "step-end", result="ok")] == [
        "overview",
        "sentinels",
        "quorum",
        "primary",
        "replicas",
        "writes",
        "verdict",
    ]
    assert not events(recs, "lock")  # read-only: no lock
    pw = lab.inv.password()
    assert pw and pw not in journalmod.runs(jdir)[0].read_text()


def test_dry_run_changes_nothing(lab: Lab, jdir: Path) -> None:
    node = replica_of(lab)
    before = shape(lab.inv)
    r = run(lab, jdir, "--dry-run", node=node, priority="42", expect="42")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"would: {node}: CONFIG SET replica-priority 42  (now 100; not persisted)" in r.stdout
    assert "DRY RUN" in r.stdout
    assert shape(lab.inv) == before
    recs = records(jdir)
    assert recs[0]["dry_run"] is True
    assert not events(recs, "lock") and not events(recs, "step-end")
    assert events(recs, "end")[0]["result"] == "dry-run"


def test_yes_runs_to_completion(lab: Lab, jdir: Path) -> None:
    node = replica_of(lab)
    r = run(lab, jdir, "--yes", node=node, priority="42", expect="42")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{node}: replica-priority 100 -> 42" in r.stdout
    assert priority(lab.inv, node) == "100"  # the last step restored it
    recs = records(jdir)
    done = [e["step"] for e in events(recs, "step-end", result="ok")]
    assert done == ["preflight", "set-priority", "check-priority", "restore"]
    assert [a["step"] for a in events(recs, "answer", auto=True)] == ["set-priority", "restore"]
    assert events(recs, "lock")[0]["mode"] == "cluster+file"
    end = events(recs, "end")[0]
    assert end["result"] == "completed" and end["exit_code"] == 0
    assert end["facts_after"]["healthy"] is True
    assert recs[0]["who"] and recs[0]["params"]["node"] == node


def test_refused_guard_stops_and_is_journaled(lab: Lab, jdir: Path) -> None:
    primary = lab.current_primary().name
    r = run(lab, jdir, "--yes", node=primary, priority="42", expect="42")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "guard refused" in r.stdout
    assert f"{primary} is the current primary" in r.stdout
    assert priority(lab.inv, primary) == "100"
    recs = records(jdir)
    g = events(recs, "guard", check="node.not_primary")[0]
    assert g["ok"] is False and "current primary" in g["message"]
    assert events(recs, "step-end")[-1]["result"] == "refused"
    assert events(recs, "end")[0]["result"] == "refused"
    assert not events(recs, "step-start", step="set-priority")


def test_failed_step_is_undone(lab: Lab, jdir: Path) -> None:
    node = replica_of(lab)
    r = run(lab, jdir, "--yes", node=node, priority="42", expect="999")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "replica-priority is 42, not 999" in r.stdout
    assert priority(lab.inv, node) == "100"
    recs = records(jdir)
    undo = events(recs, "undo")
    assert [(u["step"], u["result"]) for u in undo] == [("set-priority", "ok")]
    assert events(recs, "end")[0]["result"] == "failed"


def test_no_terminal_and_no_yes_refuses(lab: Lab, jdir: Path) -> None:
    node = replica_of(lab)
    r = run(lab, jdir, node=node, priority="42", expect="42")
    assert r.returncode != 0
    assert "no terminal" in r.stderr and "--yes" in r.stderr
    assert "Traceback" not in r.stderr
    assert priority(lab.inv, node) == "100"


def test_interrupted_run_resumes_from_first_unfinished_step(lab: Lab, jdir: Path) -> None:
    """SIGTERM during step 3 leaves priority 42; --resume continues at step 3 with the saved
    state (step 4 restores the value step 2 saved) and does not redo steps 1-2."""
    node = replica_of(lab)
    argv = [sys.executable, "-m", "invoke", "runbooks.run", PB, "--yes"]
    argv += ["--inventory", str(lab.inv.path), "--param", f"node={node}"]
    argv += ["--param", "priority=42", "--param", "expect=999"]
    env = {**os.environ, journalmod.ENV_DIR: str(jdir), "NO_COLOR": "1"}
    p = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = journalmod.runs(jdir)
            if runs and events(journalmod.read(runs[0]), "step-start", step="check-priority"):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the run never reached step 3")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, out
    assert "--resume" in out
    assert priority(lab.inv, node) == "42"  # interrupted mid-procedure, not undone
    run_id = journalmod.runs(jdir)[0].stem

    r = run(lab, jdir, "--yes", "--resume", run_id, expect="42")
    assert r.returncode == 0, r.stdout + r.stderr
    assert priority(lab.inv, node) == "100"
    recs = records(jdir)  # the same journal, continued
    assert events(recs, "interrupted")
    assert events(recs, "resume")[0]["from_step"] == "check-priority"
    assert len(events(recs, "step-end", step="set-priority")) == 1  # not redone
    assert events(recs, "end")[-1]["result"] == "completed"
    assert journalmod.summary(recs)["result"] == "completed"

    again = run(lab, jdir, "--yes", "--resume", run_id)
    assert again.returncode != 0
    assert "already completed" in again.stderr


def test_journal_show_and_list(lab: Lab, jdir: Path) -> None:
    node = replica_of(lab)
    assert run(lab, jdir, "--yes", node=node, priority="42", expect="999").returncode == 1
    env = {journalmod.ENV_DIR: str(jdir)}
    r = run_invoke("journal.show", env=env)
    assert r.returncode == 0, r.stderr
    md = r.stdout
    assert md.startswith("# Change a replica's priority (test procedure) — run ")
    assert "| time (UTC) | step | event | detail |" in md
    assert "operator answered **yes** (--yes)" in md
    assert "undo node.restore_config: ok" in md
    assert "**Result:** failed (exit 1)" in md
    run_id = journalmod.runs(jdir)[0].stem
    assert run_invoke("journal.show", "--run", run_id[-20:], env=env).stdout == md
    r = run_invoke("journal.list", env=env)
    assert r.returncode == 0 and "priority-change" in r.stdout and "failed" in r.stdout
    r = run_invoke("journal.show", "--run", "nope-nope", env=env)
    assert r.returncode == 1 and "no run 'nope-nope'" in r.stderr


def test_wrong_password_is_one_line(lab: Lab, jdir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "inventory.yaml"
    pw = tmp_path / "wrong-password"
    pw.write_text("not-the-password\n")
    text = Path(lab.inv.path).read_text().replace(str(lab.inv.auth.password_file), str(pw))
    bad.write_text(text)
    r = run_invoke("check", inventory=bad, env={journalmod.ENV_DIR: str(jdir)})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: every node and Sentinel refused us: authentication failed (wrong password?); "
        f'check the password file {pw}, as ACL user "default" (the inventory names no other)'
    ]
