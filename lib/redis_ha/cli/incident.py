"""Guided incident response: assess, say what is wrong in plain words, run the right runbook."""

from __future__ import annotations

import sys

from invoke import task
from invoke.exceptions import Exit
from rich.table import Table

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.triage import Finding, triage

RUNNABLE = {
    "failover-automatic",
    "replica-rebuild",
    "split-brain",
    "rollback",
    "health-check",
}


def findings_table(findings: list[Finding]) -> Table:
    t = Table(title="What is wrong, most urgent first", title_justify="left")
    for col in ("#", "severity", "finding", "why it matters", "next command"):
        t.add_column(col)
    style = {"critical": "bold red", "high": "red", "medium": "yellow", "info": "cyan"}
    for i, f in enumerate(findings, 1):
        name = f.severity_name
        t.add_row(str(i), f"[{style[name]}]{name}[/]", f.title, f.why, f.command or "-")
    return t


@task(
    help={
        "inventory": INVENTORY_HELP,
        "json": "print the findings as JSON and exit with the health code (for bots)",
    }
)
@expected_errors
def incident(c, inventory=None, json=False):
    """Guided incident response: assess, name what is wrong, run the matching runbook."""
    inv = load_inventory(inventory)
    while True:
        facts = factsmod.gather(inv)
        health = healthmod.assess(inv, facts)
        findings = triage(inv, facts, health)
        if json:
            d = healthmod.status_dict(inv, facts, health)
            d["findings"] = [f.to_dict() for f in findings]
            ui.print_json(d)
            raise Exit(code=health.exit_code)
        ui.status_tables(facts, health)
        if not findings:
            ui.console.print("[green]Nothing needs doing.[/] Keep the journal of what you did.")
            return
        ui.console.print(findings_table(findings))
        if not sys.stdin.isatty():
            ui.console.print("no terminal: run the next command above yourself")
            raise Exit(code=health.exit_code)
        choice = _ask(findings)
        if choice is None:
            raise Exit(code=health.exit_code)
        if choice == "refresh":
            continue
        _run(choice, inventory)


def _ask(findings: list[Finding]) -> Finding | str | None:
    import questionary

    options: list[questionary.Choice] = []
    for i, f in enumerate(findings, 1):
        if f.runbook in RUNNABLE:
            options.append(questionary.Choice(f"{i}. run the {f.runbook} runbook", value=f))
    options.append(questionary.Choice("refresh the assessment", value="refresh"))
    options.append(questionary.Choice("quit (I will act by hand)", value=None))
    return questionary.select("What next?", choices=options).ask()


def _run(f: Finding | str, inventory: str | None) -> None:
    """Run the procedure the finding points to, through the same runner as its own task."""
    assert isinstance(f, Finding) and f.runbook
    from redis_ha.cli.procedures import run_procedure

    try:
        run_procedure(f.runbook, inventory, params=dict(f.params), dry_run=False, yes=False)
    except Exit as e:
        ui.console.print(f"[yellow]{f.runbook} ended with code {e.code}[/]; re-assessing")
