"""`drill.*`: inject a realistic fault into the lab, let a trainee respond, score it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Collection, task
from invoke.exceptions import Exit

from redis_ha import ui
from redis_ha.choices import DRILL_SCENARIOS, SPLITBRAIN_SCENARIOS
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.cli.names import command
from redis_ha.errors import InventoryError

if TYPE_CHECKING:  # imported where used: listing the tasks should not load the drills and lab
    from redis_ha import drills
    from redis_ha.lab import restart_empty

WRAPPER_CHOICES = {"inventory": None, "on": True, "off": False}


@task(name="list", help={"json": "print [{name, difficulty, description}] as JSON"})
def list_(c, json=False):
    """List the drill scenarios: what breaks, how hard, the runbook that answers it, par time."""
    from rich.table import Table

    from redis_ha import drills

    if json:
        ui.print_json(
            [
                {"name": s.name, "difficulty": s.difficulty, "description": s.title}
                for s in drills.SCENARIOS.values()
            ]
        )
        return
    t = Table(title="Drill scenarios", title_justify="left")
    for col in ("scenario", "difficulty", "what happens", "runbook", "par"):
        t.add_column(col)
    for s in drills.SCENARIOS.values():
        runbook = s.procedure + (" (--auto: interim steps)" if s.interim else "")
        t.add_row(s.name, s.difficulty, s.title, runbook, f"{s.par_s // 60} min")
    ui.console.print(t)


def _page(st: dict[str, Any]) -> None:
    from redis_ha import drills, journal

    sc = drills.SCENARIOS[st["scenario"]]
    ui.console.rule(f"[bold]DRILL {sc.name}[/] started {journal.utc(st['started'])}")
    ui.console.print(f"[bold red]{sc.page.format(primary=st['primary'], node=st['node'])}[/]")


def _show_card(card: drills.Scorecard, path: Path, as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        d = card.to_dict()
        d["saved"] = str(path)
        ui.print_json(d)
        return
    t = Table(title=f"Scorecard: {card.scenario} ({card.operator})", title_justify="left")
    for col in ("criterion", "points", "note"):
        t.add_column(col)
    for i in card.items:
        style = "green" if i.points == i.max_points else ("yellow" if i.points else "red")
        t.add_row(i.criterion, f"[{style}]{i.points}/{i.max_points}[/]", i.note)
    ui.console.print(t)
    verdict = "[bold green]PASSED[/]" if card.passed else "[bold red]NOT PASSED[/]"
    ui.console.print(f"{verdict}  {card.score}/{card.max_score}  (saved to {path})")


@task(
    help={
        "scenario": f"one of: {', '.join(DRILL_SCENARIOS)}",
        "auto": "run the recommended response yourself (dry run, then --yes) and score it",
        "inventory": INVENTORY_HELP,
        "rate": "app simulator requests per second in the background (default 500)",
        "json": "--auto: print the scorecard as JSON",
    }
)
@expected_errors
def run(c, scenario, auto=False, inventory=None, rate=500, json=False):
    """A drill from a known lab: traffic, the fault; you respond, or --auto runs the runbook."""
    from redis_ha import drills

    inv = load_inventory(inventory)
    drills.scenario_named(scenario)  # before anything is touched
    st, done = drills.run(inv, scenario, auto=auto, rate=int(rate))
    if done is None:
        _page(st)
        ui.console.print(_respond())
        return
    card, path = done
    for r in card.response:
        mark = "ok" if r["ok"] else "FAILED"
        ui.err_console.print(f"{mark}: {r['step']} ({r['seconds']} s): {r['note']}")
    _show_card(card, path, json)
    if not card.passed:
        raise Exit(code=1)


def _respond() -> str:
    return (
        f"Respond as you would on call ({command('status')}, {command('incident')}, the "
        f"runbooks). When you believe it is resolved: [bold]{command('drill.score')}[/]"
    )


@task(
    help={
        "scenario": f"one of: {', '.join(DRILL_SCENARIOS)}",
        "inventory": INVENTORY_HELP,
        "rate": "app simulator requests per second in the background (default 500)",
    }
)
@expected_errors
def start(c, scenario, inventory=None, rate=500):
    """Start a drill: app traffic in the background, a real fault injected, the page shown."""
    from redis_ha import drills

    inv = load_inventory(inventory)
    st = drills.start(inv, scenario, rate=int(rate))
    _page(st)
    ui.console.print(_respond())


@task(help={"inventory": INVENTORY_HELP, "json": "print the scorecard as JSON"})
@expected_errors
def score(c, inventory=None, json=False):
    """End the running drill: stop the traffic, score the response, save the scorecard."""
    from redis_ha import drills

    inv = load_inventory(inventory)
    card, path = drills.finish(inv)
    _show_card(card, path, json)
    if not card.passed:
        raise Exit(code=1)


@task(
    help={
        "operator": "only this person's scorecards (default: everyone's)",
        "json": "print the scorecards as JSON, oldest first",
    }
)
@expected_errors
def history(c, operator=None, json=False):
    """Each person's drill scorecards over time (saved next to the journals)."""
    from rich.table import Table

    from redis_ha import drills, journal

    cards = drills.history(operator)
    if json:
        ui.print_json(cards)
        return
    if not cards:
        ui.console.print(f"no drill scorecards yet (run one: {command('drill.run --scenario S')})")
        return
    people = sorted({str(d.get("operator")) for d in cards})
    for who in people:
        t = Table(title=f"Drills of {who}", title_justify="left")
        for col in ("when", "scenario", "mode", "score", "result", "time"):
            t.add_column(col)
        for d in cards:
            if str(d.get("operator")) != who:
                continue
            result = "[green]passed[/]" if d.get("passed") else "[red]not passed[/]"
            t.add_row(
                journal.utc(float(d.get("started") or 0)),
                str(d.get("scenario")),
                str(d.get("mode", "trainee")),
                f"{d.get('score')}/{d.get('max_score')}",
                result,
                f"{d.get('elapsed_s')} s",
            )
        ui.console.print(t)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "scenario": f"one of: {', '.join(SPLITBRAIN_SCENARIOS)}",
        "write_s": "partition only: seconds a client keeps writing to the isolated old primary",
    }
)
@expected_errors
def drill_splitbrain(c, scenario, inventory=None, write_s=12):
    """Inject a split-brain form into the lab (then: splitbrain.detect, splitbrain.recover)."""
    from redis_ha.lab import scenarios
    from redis_ha.lab.cluster import Lab

    lab = Lab(load_inventory(inventory))
    out = scenarios.run(lab, scenario, write_s=float(write_s))
    for k, v in out.items():
        ui.console.print(f"{k}: {v}")
    ui.console.print(f"now: {command('splitbrain.detect')}, then {command('splitbrain.recover')}")


@task(
    help={
        "inventory": INVENTORY_HELP,
        "node": "node to restart (default: the current primary)",
        "keys": "keys to load before the restart (default 5000)",
        "delay": "seconds between the kill and the restart (default 0.3)",
        "wrapper": "start through redis_ha.safestart: on, off, or inventory (control.safestart)",
        "rate": "writes per second during the drill (default 0: none)",
        "simulator": "drive the --rate with the app simulator (lab.traffic) instead of a writer",
        "json": "print the result as JSON",
        "dry_run": "say what the drill would do; touch nothing",
    }
)
@expected_errors
def restart_empty_drill(
    c,
    inventory=None,
    node=None,
    keys=5000,
    delay=0.3,
    wrapper="inventory",
    rate=0,
    simulator=False,
    json=False,
    dry_run=False,
):
    """Lab drill: kill the primary and restart it empty at once; show keys before/after per node."""
    from redis_ha.control import starts_safely
    from redis_ha.lab import restart_empty
    from redis_ha.lab.cluster import Lab

    if wrapper not in WRAPPER_CHOICES:
        raise InventoryError(
            f"--wrapper must be one of {', '.join(WRAPPER_CHOICES)}, not {wrapper!r}"
        )
    inv = load_inventory(inventory)
    lab = Lab(inv)  # refuses inventories without `lab: true`
    if dry_run:
        ep = inv.node(node) if node else lab.current_primary()
        target = ep.name if node else f"the primary ({ep.name})"
        on = WRAPPER_CHOICES[wrapper]
        via = starts_safely(inv, ep) if on is None else on
        ui.console.print(
            f"dry run: would load {keys} keys, SIGKILL {target}, start it again {delay} s later "
            f"{'through safestart' if via else 'directly (no wrapper)'}"
            f"{f' under {rate} writes/s' if int(rate) else ''}; nothing done"
        )
        return
    res = restart_empty.run(
        lab,
        node=node,
        keys=int(keys),
        delay=float(delay),
        wrapper=WRAPPER_CHOICES[wrapper],
        rate=int(rate),
        simulator=simulator,
    )
    if json:
        ui.print_json(res.to_dict())
    else:
        _show(res)
    if res.lost:
        raise Exit(code=1)


def _show(res: restart_empty.DrillResult) -> None:
    from rich import box
    from rich.table import Table

    how = "through safestart" if res.wrapper else "directly (no wrapper)"
    ui.console.print(
        f"restarted {res.node} {how}: port open {res.restart_s:.2f} s after the SIGKILL"
    )
    if res.decision:
        ui.console.print(res.decision)
    t = Table(box=box.SIMPLE, title_justify="left", title="keys on every node")
    for col in ("node", "role before", "keys before", "role after", "keys after", "loaded kept"):
        t.add_column(col, justify="right" if "keys" in col or "kept" in col else "left")
    for b, a in zip(res.before, res.after, strict=True):
        kept = "-" if a.loaded is None else f"{a.loaded}/{res.loaded}"
        t.add_row(b.name, b.role or "down", str(b.keys), a.role or "down", str(a.keys), kept)
    ui.console.print(t)
    ui.console.print(
        f"Sentinels named {', '.join(map(str, res.sentinels_before))} before, "
        f"{', '.join(map(str, res.sentinels_after))} after"
    )
    if res.writes_acked:
        ui.console.print(
            f"writer: {res.writes_acked} acknowledged, {res.lost_before_marker} of the "
            f"{res.writes_acked_before_marker} replicated before the kill lost, "
            f"{res.lost_after_marker} acked in the last ms before the kill lost, "
            f"longest gap {res.longest_gap_s:.2f} s"
        )
    if res.app:
        sim = res.app
        ui.console.print(
            f"app simulator: {sim['acked_writes']} acknowledged writes, {sim['missing_writes']} "
            f"missing, {sim['missing_keys']} keys gone, {sim['failed']} failed requests, longest "
            f"write stall {sim['write_stall_s']:.2f} s, hit rate {sim['hit_rate'].get('overall')}"
        )
    for p in res.problems:
        ui.console.print(f"[yellow]{p}[/]")
    if res.lost:
        ui.console.print("[bold red]DATA LOST[/]: see runbooks/safe-restart.md")
    else:
        ui.console.print("[bold green]no data lost[/]")


drill = Collection("drill", list_, run, start, score, history)
drill.add_task(drill_splitbrain, "splitbrain")
drill.add_task(restart_empty_drill, "restart-empty")
