"""`config.*`: the configuration files an inventory implies, and drift from them."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from redis_ha import choices, ui, units
from redis_ha.cli import repair
from redis_ha.cli.common import INVENTORY_HELP, expected_errors, load_inventory
from redis_ha.errors import HAError


@task(
    help={
        "inventory": INVENTORY_HELP,
        "out": "folder to write the files into",
        "primary": "node that starts as primary (default: the first node)",
        "target": "railway, systemd or compose: every file that deploys the cluster there "
        "(default: one <name>.conf per node and Sentinel, mode 0600)",
        "image": f"railway/compose: the image with redis-server and this tool "
        f"(default {choices.DEFAULT_IMAGE})",
        "python": "systemd: python with redis-ha-runbooks installed "
        f"(default {units.DEFAULT_PYTHON})",
    }
)
@expected_errors
def config_render(
    c, out, inventory=None, primary=None, target=None, image=choices.DEFAULT_IMAGE,
    python=units.DEFAULT_PYTHON,
):  # fmt: skip
    """Render the cluster's configs, or with --target every file that deploys it on a platform."""
    from redis_ha import deploy, render

    inv = load_inventory(inventory)
    first = inv.node(primary) if primary else None
    try:
        if target:
            files = deploy.render_target(
                inv, target, Path(out), primary=first, image=image, python=python
            )
        else:
            files = render.render_all(inv, Path(out), first)
    except OSError as e:
        raise HAError(f"cannot write {e.filename or out}: {e.strerror or e}") from None
    for f in files:
        ui.console.print(f"wrote {f}")


@task(help={"inventory": INVENTORY_HELP, "json": "print the differences as JSON"})
@expected_errors
def config_drift(c, inventory=None, json=False):
    """Compare the live settings of every node and Sentinel with the inventory; exit 1 on drift."""
    from redis_ha import drift as driftmod
    from redis_ha import facts as factsmod

    inv = load_inventory(inventory)
    facts = factsmod.gather(inv, detail=False)  # CONFIG GET and SENTINEL MASTER are enough
    drifts, unchecked = driftmod.find_drift(inv, facts)
    if json:
        ui.print_json(
            {"drift": [d.__dict__ for d in drifts], "unchecked": unchecked, "ok": not drifts}
        )
    else:
        for d in drifts:
            ui.console.print(f"[yellow]drift[/] {d}")
        for u in unchecked:
            ui.console.print(f"[red]not checked[/] {u}")
        if not drifts:
            n = len(inv.nodes) + len(inv.sentinels) - len(unchecked)
            ui.console.print(f"[green]no drift[/] on the {n} targets checked")
    if drifts or unchecked:
        raise Exit(code=1)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "out": "folder to write the unit files and Railway start commands into",
        "python": f"python with redis-ha-runbooks installed (default {units.DEFAULT_PYTHON})",
        "server": f"redis-server binary (default {units.DEFAULT_SERVER})",
        "conf_dir": f"where <node>.conf and inventory.yaml live (default {units.DEFAULT_CONF_DIR})",
    }
)
@expected_errors
def render_units(
    c,
    out,
    inventory=None,
    python=units.DEFAULT_PYTHON,
    server=units.DEFAULT_SERVER,
    conf_dir=units.DEFAULT_CONF_DIR,
):
    """Render systemd units and Railway start commands that start redis through safestart."""
    inv = load_inventory(inventory)
    for f in units.render_units(inv, Path(out), python=python, server=server, conf_dir=conf_dir):
        ui.console.print(f"wrote {f}")


config = Collection("config")
config.add_task(config_render, "render")
config.add_task(config_drift, "drift")
config.add_task(render_units, "render-units")
config.add_task(repair.converge)
