"""The production-target confirmation: before the first change to a cluster that is not a lab,
its name is typed (or given as `--target-name` with `--yes`), so a "y" pressed on the wrong
terminal changes nothing."""

from __future__ import annotations

from typing import Any

from redis_ha import ui
from redis_ha.errors import EXIT_STOPPED, HAError
from redis_ha.inventory import Inventory


def confirm(inv: Inventory, target_name: str | None, *, yes: bool, ask: bool) -> dict[str, Any]:
    """The journal's answer record for the confirmation (empty for a lab); raises HAError when
    the name given or typed is not this inventory's cluster, or `--yes` came without it."""
    name = inv.name
    if inv.lab:
        return {}
    if target_name is not None:
        if target_name != name:
            raise HAError(
                f"--target-name {target_name!r} is not this inventory's cluster {name!r}: "
                "nothing was changed"
            )
        return {"auto": True, "target": name}
    if yes or not ask:
        raise HAError(
            f"{name!r} is not a lab: --yes needs --target-name {name} as well (nothing was changed)"
        )
    ui.console.print(f"  [bold red]PRODUCTION TARGET: {name}[/] ({inv.path})")
    typed = ui.ask_text(f"Type the cluster's name ({name}) to change it:").strip()
    if typed != name:
        raise HAError(f"typed {typed!r}, not {name!r}: nothing was changed", code=EXIT_STOPPED)
    return {"auto": False, "typed": True}
