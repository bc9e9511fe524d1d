"""Where things are: the procedures shipped with the package, and the folder the tool writes in.

runbooks/, playbooks/ and inventories/ live at the top of the repository, where people read them
on GitHub. The package reaches them as `redis_ha/data/<kind>`: symbolic links in a checkout,
real folders in the wheel (setuptools copies what the links point to). So one lookup through
importlib.resources serves a checkout, an editable install and a pip/pipx install alike, and a
checkout always shows its own, edited files.

What the tool writes (journals, lab state, drill state, benchmark results) goes under `home()`:
$REDIS_HA_HOME, else the current folder; never into the install.
"""

from __future__ import annotations

import os
from pathlib import Path

from redis_ha.errors import HAError

ENV_HOME = "REDIS_HA_HOME"
KINDS = ("runbooks", "playbooks", "inventories")


def shipped(kind: str) -> Path:
    """The folder of `kind` (runbooks, playbooks, inventories) that came with this package."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    # Beside this module in a checkout, an editable and a pip/pipx install; importlib.resources
    # (which costs `status` and `health` ~8 ms of imports) only for an install that is not.
    path = (Path(__file__).resolve().parent / "data" / kind).resolve()
    if not path.is_dir():
        from importlib import resources

        path = Path(str(resources.files("redis_ha") / "data" / kind)).resolve()
    if not path.is_dir():
        raise HAError(f"{path}: the package's {kind} are missing; reinstall redis-ha-runbooks")
    return path


def home() -> Path:
    """The folder the tool writes in: $REDIS_HA_HOME, else the current folder."""
    return Path(os.environ.get(ENV_HOME) or os.getcwd()).absolute()


def anchor(inventory_file: Path) -> Path:
    """The folder an inventory's relative paths start from.

    Its own folder, except for the inventories shipped with the package: those behave as if
    copied to `home()/inventories/`, so the lab's `../.lab` lands under home(), not in the install.
    """
    folder = inventory_file.resolve().parent
    return home() / "inventories" if folder == shipped("inventories") else folder
