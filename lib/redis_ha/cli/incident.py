"""Guided incident response: ask what cannot be seen, assess, name what is wrong in plain words,
run the right runbook, and keep the incident's log for its postmortem (`incident.report`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from invoke import Collection, task
from invoke.exceptions import Exit
from rich.table import Table

from redis_ha import health as healthmod
from redis_ha import incident_log, ui
from redis_ha import journal as journalmod
from redis_ha import sentinel_events as eventsmod
from redis_ha import view as viewmod
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.inventory import Inventory
from redis_ha.triage import Finding, triage

RUNNABLE = {
    "failover-automatic",
    "replica-rebuild",
    "split-brain",
    "rollback",
    "health-check",
    "sentinel-repair",
    "memory-pressure",
    "writes-paused",
    "config-drift",
}
# What the cluster cannot tell: asked once, at the start, and kept in the incident log.
QUESTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "app",
        "What does the app show?",
        (
            "users logged out / sessions lost",
            "errors on writes (OOM, NOREPLICAS, READONLY)",
            "requests hang or are slow",
            "nothing visible: an alert only",
            "something else",
        ),
    ),
    (
        "change",
        "A recent deploy or maintenance?",
        (
            "none that I know of",
            "an app deploy",
            "a Redis or Sentinel config change",
            "host or platform maintenance (restart, upgrade)",
            "don't know",
        ),
    ),
)


def findings_table(findings: list[Finding]) -> Table:
    t = Table(title="What is wrong, most urgent first", title_justify="left")
    for col in ("#", "severity", "finding", "why it matters", "runbook (step)", "next command"):
        t.add_column(col)
    style = {"critical": "bold red", "high": "red", "medium": "yellow", "info": "cyan"}
    for i, f in enumerate(findings, 1):
        name = f.severity_name
        where = f"{f.runbook} ({f.step})" if f.runbook else "-"
        t.add_row(str(i), f"[{style[name]}]{name}[/]", f.title, f.why, where, f.command or "-")
    return t


@task(
    help={
        "inventory": INVENTORY_HELP,
        "json": "print the findings as JSON and exit with the health code (for bots; no log)",
        "app": "what the app shows (skips that question)",
        "change": "a recent deploy or maintenance (skips that question)",
    }
)
@expected_errors
def incident(c, inventory=None, json=False, app=None, change=None):
    """Guided incident response: ask, assess, name what is wrong, run the matching runbook."""
    inv = load_inventory(inventory)
    if json:
        v = viewmod.take(inv)
        facts, health = v.facts, v.health
        d = healthmod.status_dict(inv, facts, health)
        d["findings"] = [f.to_dict() for f in triage(inv, facts, health)]
        ui.print_json(d)
        raise Exit(code=health.exit_code)
    log = incident_log.open_log(inv.secrets())
    log.write("opened", **journalmod.whoami(), inventory=str(inv.path))
    ui.console.print(f"incident log: {log.path}  (postmortem: invoke incident.report)")
    tty = sys.stdin.isatty()
    given = {"app": app, "change": change}
    for key, question, choices in QUESTIONS:
        answer = given[key] or (_ask_text(question, choices) if tty else None)
        log.write("answer", key=key, question=question, answer=answer or "not asked (no terminal)")
    while True:
        v = viewmod.take(inv)
        facts, health = v.facts, v.health
        findings = triage(inv, facts, health)
        log.write("assessment", level=health.level, findings=[f.to_dict() for f in findings])
        ui.status_tables(facts, health)
        if not findings:
            ui.console.print("[green]Nothing needs doing.[/] Write it up: invoke incident.report")
            log.write("closed", why="nothing needs doing")
            return
        ui.console.print(findings_table(findings))
        if not tty:
            ui.console.print("no terminal: run the next command above yourself")
            log.write("closed", why="no terminal")
            raise Exit(code=health.exit_code)
        choice = _ask(findings)
        if choice is None:
            log.write("closed", why="the operator acts by hand")
            raise Exit(code=health.exit_code)
        if choice == "refresh":
            continue
        assert isinstance(choice, Finding)
        _run(choice, inventory, log)


def _ask_text(question: str, choices: tuple[str, ...]) -> str | None:
    import questionary

    answer: str | None = questionary.select(question, choices=list(choices)).ask()
    return answer


def _ask(findings: list[Finding]) -> Finding | str | None:
    import questionary

    options: list[questionary.Choice] = []
    for i, f in enumerate(findings, 1):
        if f.runbook in RUNNABLE:
            label = f"{i}. run the {f.runbook} runbook (from step {f.step})"
            options.append(questionary.Choice(label, value=f))
    options.append(questionary.Choice("refresh the assessment", value="refresh"))
    options.append(questionary.Choice("quit (I will act by hand)", value=None))
    return questionary.select("What next?", choices=options).ask()


def _run(f: Finding, inventory: str | None, log: journalmod.Journal) -> None:
    """Run the procedure the finding points to, through the same runner as its own task, and
    log its start, its journal and its exit code in the incident."""
    from redis_ha.cli.procedures import run_procedure

    assert f.runbook
    before = set(journalmod.runs())
    log.write("procedure-start", runbook=f.runbook, command=f.command, params=f.params)
    code: Any = 0
    try:
        run_procedure(f.runbook, inventory, params=dict(f.params), dry_run=False, yes=False)
    except Exit as e:
        code = e.code
        ui.console.print(f"[yellow]{f.runbook} ended with code {e.code}[/]; re-assessing")
    new = [p for p in journalmod.runs() if p not in before]
    run = new[-1] if new else None
    log.write(
        "procedure-end",
        runbook=f.runbook,
        command=f.command,
        exit_code=code,
        run=run.stem if run else None,
        journal=str(run) if run else None,
    )
    time.sleep(0.2)  # the next assessment after the procedure's last write


@task(
    help={
        "id": "incident id or unique part of it (default: the latest)",
        "inventory": INVENTORY_HELP,
        "out": "write the Markdown to this file instead of printing it",
    }
)
@expected_errors
def report(c, id=None, inventory=None, out=None):
    """Postmortem skeleton of an incident: timeline, impact window, actions, follow-ups."""
    path = incident_log.find(id)
    records = journalmod.read(path)
    inv: Inventory = load_inventory(inventory or (records[0].get("inventory") if records else None))
    events, _ = eventsmod.read_events(inv)
    text = incident_log.report(records, events, path.stem)
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}")
    else:
        print(text)


incident_ns = Collection("incident")
incident_ns.add_task(incident, default=True)
incident_ns.add_task(report)
