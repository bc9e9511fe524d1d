"""The log of one incident, from its first question, and the postmortem skeleton made from it.

An incident is a JSONL file under the journal folder (`incidents/<UTC stamp>-incident.jsonl`),
written and redacted exactly like a procedure's journal (`redis_ha.journal.Journal`): what the
operator answered, every assessment with its findings, every procedure started from it and the
journal of that run. `report` turns it into Markdown: a timeline merging the incident, the
journals of its procedures and the Sentinel events, the impact window, actions and follow-ups.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis_ha import journal as journalmod
from redis_ha.cli.names import command
from redis_ha.journal import JournalError
from redis_ha.sentinel_events import Event

SUBDIR = "incidents"
# Sentinel events this long before the incident opened belong to it (the page comes late).
LEAD_S = 15 * 60


def incident_dir() -> Path:
    return journalmod.journal_dir() / SUBDIR


def open_log(secrets: list[str]) -> journalmod.Journal:
    """A new incident log (same naming, exclusivity and redaction as a procedure journal)."""
    d = incident_dir()
    d.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    n = 1
    while True:
        path = d / f"{stamp}-incident{f'-{n}' if n > 1 else ''}.jsonl"
        try:
            path.open("x").close()
        except FileExistsError:
            n += 1
            continue
        return journalmod.Journal(path, secrets)


def find(incident: str | None) -> Path:
    """An incident by id, unique part of it, path, or the latest (None / 'latest')."""
    d = incident_dir()
    logs = sorted(d.glob("*.jsonl")) if d.exists() else []
    if incident and Path(incident).suffix == ".jsonl" and Path(incident).exists():
        return Path(incident)
    if not incident or incident == "latest":
        if not logs:
            raise JournalError(f"no incident in {d} yet ({command('incident')} starts one)")
        return logs[-1]
    hits = [p for p in logs if incident in p.stem]
    if len(hits) != 1:
        raise JournalError(
            f"{incident!r} matches {len(hits)} incidents in {d}; give more of its id"
        )
    return hits[0]


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _dur(s: float) -> str:
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m else f"{s:.0f} s"


def _procedure_rows(rec: dict[str, Any]) -> list[tuple[float, str, str]]:
    """Timeline rows of the journal a started procedure wrote (start, steps, end)."""
    path = Path(str(rec.get("journal") or ""))
    if not path.is_file():
        return []
    rows = []
    for r in journalmod.read(path):
        ev = r.get("event")
        if ev == "step-start":
            rows.append((r["ts"], "procedure", f"{rec['runbook']}: step {r.get('step')}"))
        elif ev == "end":
            rows.append(
                (
                    r["ts"],
                    "procedure",
                    f"{rec['runbook']}: {r.get('result')} (exit {r.get('exit_code')})",
                )
            )
    return rows


def _incident_row(r: dict[str, Any]) -> str | None:
    ev = r["event"]
    if ev == "opened":
        return f"incident opened by {r.get('who')} on {r.get('inventory')}"
    if ev == "answer":
        return f"{r.get('question')}: {r.get('answer')}"
    if ev == "assessment":
        top = (r.get("findings") or [{}])[0]
        return f"assessed {r.get('level')}: " + (top.get("title") or "nothing needs doing")
    if ev == "procedure-start":
        return f"started {r.get('runbook')} ({r.get('command')})"
    if ev == "procedure-end":
        return f"{r.get('runbook')} ended with exit code {r.get('exit_code')}"
    if ev == "closed":
        return f"incident closed: {r.get('why')}"
    return None


def impact_window(records: list[dict[str, Any]], events: list[Event]) -> tuple[float, float | None]:
    """From the first Sentinel `+sdown` of the master (else the incident's opening) to the
    first healthy assessment (None: not over when the log ends)."""
    downs = [e.ts for e in events if e.name == "+sdown" and e.about_master]
    start = min([records[0]["ts"], *downs])
    healthy = (
        r["ts"] for r in records if r["event"] == "assessment" and r.get("level") == "healthy"
    )
    return start, next(healthy, None)


def report(records: list[dict[str, Any]], events: list[Event], incident_id: str) -> str:
    """The postmortem skeleton: what was seen, timeline, impact window, actions, follow-ups."""
    if not records:
        raise JournalError(f"incident {incident_id} has no records")
    opened = records[0]
    first = opened["ts"]
    last = records[-1]["ts"]
    events = [e for e in events if first - LEAD_S <= e.ts <= last + 60]
    rows: list[tuple[float, str, str]] = []
    for r in records:
        text = _incident_row(r)
        if text:
            rows.append((r["ts"], "incident", text))
        if r["event"] == "procedure-end":
            rows += _procedure_rows(r)
    rows += [(e.ts, e.sentinel, f"{e.name} {e.text}") for e in events]
    rows.sort(key=lambda x: x[0])

    start, end = impact_window(records, events)
    answers = [r for r in records if r["event"] == "answer"]
    assessments = [r for r in records if r["event"] == "assessment"]
    started = [r for r in records if r["event"] == "procedure-start"]
    ended = [r for r in records if r["event"] == "procedure-end"]

    out = [f"# Incident {incident_id}", ""]
    out.append(f"- opened: {journalmod.utc(first)} by {opened.get('who')} on {opened.get('host')}")
    out.append(f"- inventory: {opened.get('inventory')}")
    out += ["", "## What was seen", ""]
    out += [f"- {a.get('question')}: **{a.get('answer')}**" for a in answers] or ["- (no answers)"]
    if assessments:
        out.append("- first assessment: " + (_incident_row(assessments[0]) or ""))
        for f in (assessments[0].get("findings") or [])[:5]:
            out.append(f"  - {f.get('severity')}: {f.get('title')} -> `{f.get('command')}`")
    out += ["", "## Impact window", ""]
    if end is None:
        out.append(f"- from {journalmod.utc(start)}; not over when the log ends ({_hms(last)})")
    else:
        out.append(f"- {journalmod.utc(start)} to {_hms(end)} UTC: **{_dur(end - start)}**")
    out.append("- start: the first Sentinel `+sdown` of the primary, else the incident opening;")
    out.append("  end: the first healthy assessment")
    out += ["", "## Timeline (UTC)", "", "| time | source | what |", "|---|---|---|"]
    out += [f"| {_hms(t)} | {src} | {text.replace('|', '/')} |" for t, src, text in rows]
    out += ["", "## Actions", ""]
    for i, p in enumerate(started):
        e = ended[i] if i < len(ended) else {}
        code, run = e.get("exit_code", "unfinished"), e.get("run")
        out.append(f"- {_hms(p['ts'])} `{p.get('command')}`: exit {code} (journal {run})")
    if not started:
        out.append(
            f"- no procedure was started from `{command('incident')}` (say what was done by hand)"
        )
    out += ["", "## Follow-ups", ""]
    seen: set[str] = set()
    for a in assessments:
        for f in a.get("findings") or []:
            if f.get("severity") != "info" and f.get("diagnosis") not in seen:
                seen.add(f.get("diagnosis"))
                out.append(f"- [ ] why: {f.get('title')} (runbook {f.get('runbook')})")
    out += [
        "- [ ] was the page early enough (alert to first assessment)?",
        "- [ ] did the runbook say what to do at every step? note what was missing",
        "",
    ]
    return "\n".join(out)
