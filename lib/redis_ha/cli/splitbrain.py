"""`splitbrain.*`: find split-brain and Sentinel disagreement, and recover from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, task
from invoke.exceptions import Exit

from redis_ha import ui
from redis_ha.choices import DEFAULT_POLICY, SALVAGE_POLICIES
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.cli.names import command
from redis_ha.cli.procedures import RUN_HELP, run_procedure

if TYPE_CHECKING:  # imported where used: listing the tasks should not load redis-py
    from redis_ha import splitbrain as sb


def print_report(rep: sb.Report) -> None:
    """The detect screen: primaries, Sentinel views, the verdict and every finding."""
    from redis_ha import splitbrain as sb

    c = ui.console
    auth = rep.authoritative or "none (no Sentinel majority)"
    c.print(f"authoritative primary: [bold]{auth}[/] ({rep.votes} of {rep.sentinels_total} votes)")
    for p in rep.primaries:
        tag = "authoritative" if p["authoritative"] else "[red]STALE[/]"
        c.print(
            f"  primary {p['name']} ({p['address']}): {tag}, {p['keys']} keys, offset "
            f"{p['offset']}, replicas {', '.join(p['connected_replicas']) or 'none'}"
        )
    for s in rep.sentinels:
        if not s["up"]:
            c.print(f"  {s['name']}: down")
            continue
        mark = "" if s["agrees"] else " [red](disagrees)[/]"
        c.print(
            f"  {s['name']} says {s['primary_name'] or 'nothing'} (epoch {s['config_epoch']}, "
            f"{s['other_sentinels']} peers){mark}"
        )
    for f in rep.findings:
        style = "yellow" if f.kind == sb.NOTE else "red"
        c.print(f"  [{style}]{f.kind}[/]: {f.text}")
    if rep.consistent:
        s_up = sum(1 for s in rep.sentinels if s["up"])
        if len(rep.primaries) == 1 and s_up == rep.sentinels_total:
            what = "one primary, all Sentinels agree"
        else:
            # Nothing contradicts itself, but that is not health: say what was actually seen.
            what = (
                f"no split-brain or disagreement seen, but {len(rep.primaries)} primary(ies) "
                f"reachable and {s_up} of {rep.sentinels_total} Sentinels answer: "
                f"see {command('status')}"
            )
        c.print(f"[bold green]consistent[/]: {what} ({rep.elapsed_ms} ms)")
    else:
        what = "SPLIT-BRAIN" if rep.split_brain else "INCONSISTENT"
        c.print(
            f"[bold red]{what}[/]: run `{command('splitbrain.recover --dry-run')}` "
            "(before healing any partition) - runbooks/split-brain.md"
        )


@task(help={"inventory": INVENTORY_HELP, "json": "print one JSON object instead of text"})
@expected_errors
def detect(c, inventory=None, json=False):
    """Find split-brain and Sentinel disagreement (read-only); exit 0 consistent, 1 not."""
    from redis_ha import facts as factsmod
    from redis_ha import splitbrain as sb

    inv = load_inventory(inventory)
    rep = sb.detect(inv, factsmod.gather(inv))
    if json:
        ui.print_json(rep.to_dict())
    else:
        print_report(rep)
    if rep.exit_code:
        raise Exit(code=rep.exit_code)


@task(
    help={
        **RUN_HELP,
        "policy": f"salvage policy: {', '.join(SALVAGE_POLICIES)} (default {DEFAULT_POLICY})",
        "primary": "refuse unless the Sentinel majority names this node (a safety check)",
        "export_dir": "folder for the salvage export (default: the journal folder)",
    }
)
def recover(
    c,
    policy=None,
    primary=None,
    export_dir=None,
    inventory=None,
    dry_run=False,
    yes=False,
    resume=None,
    target_name=None,
):
    """Recover from split-brain: fence stale primaries, salvage, demote, repair Sentinels."""
    if policy and policy not in SALVAGE_POLICIES:
        choose = ", ".join(SALVAGE_POLICIES)
        raise Exit(f"error: unknown --policy {policy!r} (choose from {choose})", 2)
    run_procedure(
        "split-brain",
        inventory,
        params={"policy": policy, "primary": primary, "export_dir": export_dir},
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


splitbrain = Collection("splitbrain", detect, recover)
