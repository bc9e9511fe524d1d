"""The incident log (redacted like journals) and the postmortem skeleton made from it (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from redis_ha import incident_log
from redis_ha import journal as journalmod
from redis_ha.sentinel_events import Event

T0 = 1_800_000_000.0


def test_log_is_redacted_and_under_the_journal_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(journalmod.ENV_DIR, str(tmp_path))
    log = incident_log.open_log(["s3cret-pw"])
    log.write("answer", question="q", answer="typed s3cret-pw by mistake")
    assert log.path.parent == tmp_path / "incidents"
    assert "s3cret-pw" not in log.path.read_text()
    assert incident_log.find(None) == log.path
    assert incident_log.find(log.path.stem[:16]) == log.path


def test_find_without_incidents_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(journalmod.ENV_DIR, str(tmp_path))
    with pytest.raises(journalmod.JournalError, match="no incident in"):
        incident_log.find(None)


def records(tmp_path: Path) -> list[dict[str, Any]]:
    run = tmp_path / "run.jsonl"
    lines = [
        {"ts": T0 + 40, "event": "step-start", "step": "start-down"},
        {"ts": T0 + 45, "event": "end", "result": "ok", "exit_code": 0},
    ]
    run.write_text("".join(json.dumps(x) + "\n" for x in lines))
    finding = {
        "severity": "high",
        "title": "Sentinel(s) down: sentinel-3",
        "command": "invoke sentinel.repair",
        "diagnosis": "sentinels-down",
        "runbook": "sentinel-repair",
    }
    return [
        {"ts": T0, "event": "opened", "who": "ana", "host": "h", "inventory": "inv.yaml"},
        {"ts": T0 + 1, "event": "answer", "question": "What does the app show?", "answer": "x"},
        {"ts": T0 + 2, "event": "assessment", "level": "degraded", "findings": [finding]},
        {
            "ts": T0 + 39,
            "event": "procedure-start",
            "runbook": "sentinel-repair",
            "command": "invoke sentinel.repair",
        },
        {
            "ts": T0 + 46,
            "event": "procedure-end",
            "runbook": "sentinel-repair",
            "exit_code": 0,
            "run": "run",
            "journal": str(run),
            "command": "invoke sentinel.repair",
        },
        {"ts": T0 + 47, "event": "assessment", "level": "healthy", "findings": []},
        {"ts": T0 + 47, "event": "closed", "why": "nothing needs doing"},
    ]


def test_report_merges_incident_journal_and_sentinel_events(tmp_path: Path) -> None:
    recs = records(tmp_path)
    events = [
        Event(T0 - 20, "sentinel-1", "+sdown", "master mymaster 127.0.0.1 6379"),
        Event(T0 - 10_000, "sentinel-1", "+sdown", "master mymaster 127.0.0.1 6379"),  # old
    ]
    md = incident_log.report(recs, events, "inc-1")
    lines = md.splitlines()
    timeline = [ln for ln in lines if ln.startswith("| ") and ln[2].isdigit()]
    assert [ln.split(" | ")[1] for ln in timeline] == [
        "sentinel-1",
        "incident",
        "incident",
        "incident",
        "incident",
        "procedure",
        "procedure",
        "incident",
        "incident",
        "incident",
    ]
    assert "sentinel-repair: step start-down" in md and "sentinel-repair: ok (exit 0)" in md
    # from the Sentinel's +sdown 20 s before the page to the healthy assessment 47 s after it
    assert "**1 min 07 s**" in md
    assert "`invoke sentinel.repair`: exit 0 (journal run)" in md
    assert "- [ ] why: Sentinel(s) down: sentinel-3 (runbook sentinel-repair)" in md


def test_impact_not_over_when_never_healthy(tmp_path: Path) -> None:
    recs = [r for r in records(tmp_path) if r.get("level") != "healthy"]
    start, end = incident_log.impact_window(recs, [])
    assert (start, end) == (T0, None)
    assert "not over when the log ends" in incident_log.report(recs, [], "inc-2")
