"""Training drills: inject a realistic fault into the lab, let a trainee respond, score it."""

from __future__ import annotations

from invoke import Collection, task
from invoke.exceptions import Exit
from rich.table import Table

from redis_ha import drills, journal, ui
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory


@task(name="list")
def list_(c):
    """List the drill scenarios: what breaks, what the trainee is expected to run, par time."""
    t = Table(title="Drill scenarios", title_justify="left")
    for col in ("scenario", "what happens", "expected runbook", "par"):
        t.add_column(col)
    for s in drills.SCENARIOS.values():
        t.add_row(s.name, s.title, " or ".join(s.expected), f"{s.par_s // 60} min")
    ui.console.print(t)


@task(
    help={
        "scenario": f"one of: {', '.join(drills.SCENARIOS)}",
        "inventory": INVENTORY_HELP,
        "rate": "app simulator requests per second in the background (default 500)",
    }
)
@expected_errors
def start(c, scenario, inventory=None, rate=500):
    """Start a drill: app traffic in the background, a real fault injected, the page shown."""
    inv = load_inventory(inventory)
    st = drills.start(inv, scenario, rate=int(rate))
    sc = drills.SCENARIOS[scenario]
    page = sc.page.format(primary=st["primary"], node=st["node"])
    ui.console.rule(f"[bold]DRILL {sc.name}[/] started {journal.utc(st['started'])}")
    ui.console.print(f"[bold red]{page}[/]")
    ui.console.print(
        "Respond as you would on call (invoke status, invoke incident, the runbooks). "
        "When you believe it is resolved: [bold]invoke drill.score[/]"
    )


@task(help={"inventory": INVENTORY_HELP, "json": "print the scorecard as JSON"})
@expected_errors
def score(c, inventory=None, json=False):
    """End the running drill: stop the traffic, score the response, save the scorecard."""
    inv = load_inventory(inventory)
    card, path = drills.finish(inv)
    if json:
        d = card.to_dict()
        d["saved"] = str(path)
        ui.print_json(d)
    else:
        t = Table(title=f"Scorecard: {card.scenario} ({card.operator})", title_justify="left")
        for col in ("criterion", "points", "note"):
            t.add_column(col)
        for i in card.items:
            style = "green" if i.points == i.max_points else ("yellow" if i.points else "red")
            t.add_row(i.criterion, f"[{style}]{i.points}/{i.max_points}[/]", i.note)
        ui.console.print(t)
        verdict = "[bold green]PASSED[/]" if card.passed else "[bold red]NOT PASSED[/]"
        ui.console.print(f"{verdict}  score {card.score}/{card.max_score}   saved {path}")
    if not card.passed:
        raise Exit(code=1)


drill = Collection("drill")
drill.add_task(list_)
drill.add_task(start)
drill.add_task(score)
