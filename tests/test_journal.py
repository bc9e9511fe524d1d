"""Journal and clock logic without a cluster: redaction, the Markdown timeline, run lookup, and
the time budget display the rollback procedure relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_ha import journal as journalmod
from redis_ha.clock import clock_line


@pytest.fixture
def jdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "journal"
    monkeypatch.setenv(journalmod.ENV_DIR, str(d))
    return d


def test_secrets_are_redacted_at_any_depth(jdir: Path) -> None:
    j = journalmod.Journal.create("demo", secrets=["s3cret-pw"])
    j.write("note", message="auth with s3cret-pw failed", data={"cmd": ["AUTH", "s3cret-pw"]})
    text = j.path.read_text()
    assert "s3cret-pw" not in text
    rec = journalmod.read(j.path)[0]
    assert rec["message"] == "auth with *** failed" and rec["data"]["cmd"] == ["AUTH", "***"]


def test_torn_last_line_is_ignored(jdir: Path) -> None:
    j = journalmod.Journal.create("demo")
    j.write("start", procedure="demo")
    with j.path.open("a") as fh:
        fh.write('{"ts": 1, "event": "step-st')  # the process died mid-write
    assert [r["event"] for r in journalmod.read(j.path)] == ["start"]


def test_find_latest_prefix_and_unknown(jdir: Path) -> None:
    a = journalmod.Journal.create("alpha")
    b = journalmod.Journal.create("beta")
    assert journalmod.find(None) == b.path
    assert journalmod.find("latest") == b.path
    assert journalmod.find("alpha") == a.path
    with pytest.raises(journalmod.JournalError, match="no run 'gamma'"):
        journalmod.find("gamma")


def test_markdown_timeline() -> None:
    recs = [
        {
            "ts": 0.0,
            "event": "start",
            "procedure": "demo",
            "title": "Demo",
            "who": "ann",
            "host": "h",
            "pid": 1,
            "inventory": "/x.yaml",
            "inventory_name": "prod",
            "primary": "redis-1",
            "params": {"to": "redis-2"},
        },
        {"ts": 1.0, "event": "step-start", "step": "pause", "title": "Pause writes"},
        {
            "ts": 1.5,
            "event": "guard",
            "step": "pause",
            "check": "cluster.quorum_ok",
            "ok": True,
            "message": "quorum OK",
        },
        {"ts": 2.0, "event": "answer", "step": "pause", "answer": "yes", "auto": False},
        {
            "ts": 9.0,
            "event": "step-end",
            "step": "pause",
            "result": "failed",
            "duration_s": 7.0,
            "expected_s": 2,
            "over_expected": True,
            "error": "a | b",
        },
        {
            "ts": 9.5,
            "event": "undo",
            "step": "pause",
            "action": "primary.unpause_writes",
            "result": "ok",
            "message": "unpaused",
        },
        {
            "ts": 10.0,
            "event": "end",
            "result": "failed",
            "exit_code": 1,
            "message": "step failed",
            "duration_s": 10.0,
            "primary_after": "redis-1",
            "problems_after": ["redis-3 is down"],
        },
    ]
    md = journalmod.to_markdown(recs, "20260101T000000Z-demo")
    assert md.startswith("# Demo — run 20260101T000000Z-demo\n")
    assert "- **Operator:** ann on h (pid 1)" in md
    assert "- **Parameters:** to=redis-2" in md
    assert "- **Result:** failed (exit 1)" in md
    assert "| 00:00:01 | pause | guard | cluster.quorum_ok: ok — quorum OK |" in md
    assert "operator answered **yes**" in md
    assert "**failed** in 7.0 s. a \\| b" in md  # table cells stay intact
    assert "| pause | failed | 7.0 s ⚠ over | 2.0 s |" in md
    assert "undo primary.unpause_writes: ok unpaused" in md
    assert "- redis-3 is down" in md


def test_clock_against_expected_time_and_budget() -> None:
    assert clock_line(1.0, 2.0, 10.0, None) == "  ⏱ step 1.0 s · total 10.0 s"
    assert "⚠ over the expected 2.0 s" in clock_line(3.0, 2.0, 10.0, None)
    line = clock_line(5.0, None, 192.0, 1800.0)
    assert "elapsed 3:12 of the 30:00 budget, 26:48 left" in line
    line = clock_line(5.0, None, 1830.0, 1800.0)
    assert "OVER the 30:00 budget by 30.0 s" in line


def test_latest_run_of_a_procedure(jdir: Path) -> None:
    a = journalmod.Journal.create("failover-manual")
    journalmod.Journal.create("health-check")
    assert journalmod.find("latest", "failover-manual") == a.path
    with pytest.raises(journalmod.JournalError, match="no rollback run"):
        journalmod.find("latest", "rollback")


def test_secrets_in_values_json_cannot_encode_are_redacted(jdir: Path) -> None:
    # json.dumps(default=str) turns such values into text after redaction ran: they must not
    # carry the secret to the disk (an exception or a set in an Outcome's data, say).
    j = journalmod.Journal.create("demo", secrets=["s3cret-pw"])
    j.write("note", error=ValueError("AUTH s3cret-pw refused"), data={"seen": {"s3cret-pw"}})
    assert "s3cret-pw" not in j.path.read_text()


def test_a_secret_inside_a_longer_one_leaks_nothing_of_either() -> None:
    out = journalmod.redact("pw=s3cret-sentinel", ["s3cret", "s3cret-sentinel"])
    assert out == "pw=***"


def test_runs_started_in_the_same_second_never_share_a_journal(
    jdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process can create the same name between a look and the creation: simulate it
    # by hiding every file from the look.
    monkeypatch.setattr(Path, "exists", lambda self: False)
    a = journalmod.Journal.create("failover-manual")
    b = journalmod.Journal.create("failover-manual")
    assert a.path != b.path
