"""The rollback's Markdown report, built from its own run's journal: who, when, every step's
duration against the budget, what changed and how to undo.

The journal already holds every fact the report needs (the start record, each step's end with
its result, output and state, every undo), so the report reads it instead of keeping a second
timeline of its own. Pure: records in, text out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis_ha.appconfig import SINGLE
from redis_ha.cli.names import command
from redis_ha.journal import redact


@dataclass(frozen=True)
class Facts:
    """What the report says beyond the journal: the target and what the app was switched to."""

    inventory: str
    to: str
    where: str  # the app config backend, as it names itself
    changes: list[str]  # the variable changes, already shown without secrets
    budget_s: float
    started: float
    now: float


def _fmt_t(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + " UTC"


def step_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-step result and duration from a run's journal (the last record of each step wins)."""
    steps: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["event"] == "step-end":
            steps[r["step"]] = {
                "id": r["step"],
                "status": r.get("result", "?"),
                "duration": float(r.get("duration_s") or 0),
                "expected_s": r.get("expected_s"),
            }
    return list(steps.values())


def timeline(records: list[dict[str, Any]]) -> list[str]:
    """One line per start, lock, finished step and undo, in journal order."""
    lines = []
    for r in records:
        ev, at = r["event"], _fmt_t(float(r["ts"]))
        if ev in ("start", "resume"):
            verb = "starts" if ev == "start" else "resumes"
            lines.append(f"- {at} {r.get('who')}@{r.get('host')} {verb} {r.get('procedure')}")
        elif ev == "lock":
            lines.append(f"- {at} {r.get('message')}")
        elif ev == "step-end":
            out = r.get("error") or "; ".join(r.get("output") or [])
            said = f": {out}" if out else ""
            lines.append(f"- {at} {r.get('step')} {r.get('result')}{said}")
        elif ev == "undo":
            lines.append(f"- {at} undo {r.get('step')}: {r.get('result')} {r.get('message', '')}")
    return lines


def render(
    records: list[dict[str, Any]], state: dict[str, Any], f: Facts, secrets: list[str]
) -> str:
    """The report's Markdown, with every secret of the inventory redacted."""
    start = next((r for r in records if r["event"] == "start"), {})
    who = f"{start.get('who', '?')}@{start.get('host', '?')}"
    total = f.now - f.started
    title = "Rollback to the single instance" if f.to == SINGLE else "Roll forward to Sentinel"
    undo = command("rollback.undo" if f.to == SINGLE else "rollback")
    within = "within" if total <= f.budget_s else "OVER"
    lines = [
        f"# {title}: report",
        "",
        f"- Inventory: `{f.inventory}`",
        f"- Operator: {state.get('operator') or who}",
        f"- Started: {_fmt_t(f.started)}, finished: {_fmt_t(f.now)}",
        f"- Total: {total:.1f} s of the {f.budget_s:.0f} s budget ({within} budget)",
        "",
        "## Steps",
        "",
    ]
    steps = step_times(records)
    if steps:
        lines += ["| step | status | took | expected |", "|---|---|---:|---:|"]
        for s in steps:
            exp = f"{s['expected_s']:.0f} s" if s.get("expected_s") else "-"
            over = " (over)" if s.get("expected_s") and s["duration"] > s["expected_s"] else ""
            lines.append(f"| {s['id']} | {s['status']} | {s['duration']:.1f} s{over} | {exp} |")
        lines.append("")
    lines += ["## Timeline", "", *timeline(records)]
    backup = state.get("app_backup", "-")
    where = "the single instance" if f.to == SINGLE else "the Sentinel primary"
    lines += [
        "",
        "## What changed",
        "",
        f"- App configuration ({f.where}):",
        *[f"  - {c}" for c in f.changes],
        f"- Previous configuration saved to `{backup}`",
        f"- Sessions copied to {where}: {state.get('warm_copied', 0)}",
        f"- Sentinel cluster: {state.get('sentinel_after', 'not checked')}",
        "",
        "## How to undo",
        "",
        f"Run `{undo} --inventory {f.inventory}`, or put the saved configuration back by hand "
        f"(`{backup}`) and redeploy the app.",
        "",
    ]
    return str(redact("\n".join(lines), secrets))
