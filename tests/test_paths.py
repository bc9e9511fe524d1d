"""Where the package finds its procedures and where it writes: never into the install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redis_ha import __version__, inventory, journal, paths, playbook

from .conftest import ROOT, run_invoke


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder outside the checkout, with no redis-ha variables set."""
    for var in (paths.ENV_HOME, inventory.ENV_INVENTORY, journal.ENV_DIR):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("kind", paths.KINDS)
def test_shipped_folders_are_the_checkouts_own(kind: str) -> None:
    """In a checkout the package data are links to the top-level folders people read."""
    link = ROOT / "lib" / "redis_ha" / "data" / kind
    assert link.is_symlink() and os.readlink(link) == f"../../../{kind}"
    assert paths.shipped(kind) == (ROOT / kind).resolve()
    assert any(paths.shipped(kind).iterdir())


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        paths.shipped("journal")


def test_default_inventory_is_the_shipped_lab_outside_a_checkout(elsewhere: Path) -> None:
    assert inventory.resolve_path(None) == paths.shipped("inventories") / "lab.yaml"
    inv = inventory.load()
    # The shipped lab keeps its state under the current folder, not beside the installed YAML.
    assert inv.lab_dir == elsewhere / ".lab"
    assert inv.auth.password_file == elsewhere / ".lab" / "password"
    assert inv.app["env_file"] == str(elsewhere / ".lab" / "app.env")


def test_default_inventory_prefers_one_in_the_current_folder(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = elsewhere / "inventories" / "lab.yaml"
    local.parent.mkdir()
    local.write_text((paths.shipped("inventories") / "lab.yaml").read_text())
    assert inventory.resolve_path(None) == local
    monkeypatch.setenv(inventory.ENV_INVENTORY, "/somewhere/else.yaml")
    assert inventory.resolve_path(None) == Path("/somewhere/else.yaml")
    assert inventory.resolve_path("given.yaml") == Path("given.yaml")


def test_redis_ha_home_moves_every_state_folder(
    elsewhere: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(paths.ENV_HOME, str(home))
    assert paths.home() == home
    assert journal.journal_dir() == home / "journal"
    assert inventory.load().lab_dir == home / ".lab"
    monkeypatch.setenv(journal.ENV_DIR, str(elsewhere / "j"))
    assert journal.journal_dir() == elsewhere / "j"


def test_journal_goes_to_the_current_folder(elsewhere: Path) -> None:
    assert journal.journal_dir() == elsewhere / "journal"


def test_an_inventory_of_the_users_own_keeps_its_own_folder(elsewhere: Path) -> None:
    mine = elsewhere / "conf" / "lab.yaml"
    mine.parent.mkdir()
    mine.write_text((paths.shipped("inventories") / "lab.yaml").read_text())
    assert inventory.load(mine).lab_dir == elsewhere / ".lab"  # ../.lab from conf/
    assert paths.anchor(mine) == mine.parent


def test_playbooks_are_found_from_any_folder(elsewhere: Path) -> None:
    names = [p.stem for p in playbook.discover()]
    assert "failover-manual" in names
    pb = playbook.load("failover-manual")
    assert pb.runbook_path.parent == paths.shipped("runbooks")
    assert playbook.load("playbooks/failover-manual.yaml").path == pb.path
    assert playbook.check_all() == []


def _tasks(argv: list[str]) -> dict[str, str]:
    """name -> help of every task, from `--list --list-format json`."""
    out = subprocess.run(
        [*argv, "--list", "--list-format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found: dict[str, str] = {}

    def walk(coll: dict, prefix: str) -> None:
        for t in coll["tasks"]:
            found[prefix + t["name"]] = t["help"]
        for sub in coll["collections"]:
            walk(sub, f"{prefix}{sub['name']}.")

    walk(json.loads(out), "")
    return found


def test_the_installed_command_serves_the_same_tasks_as_invoke() -> None:
    """`redis-ha` (here `python -m redis_ha`) and `invoke` in a checkout: one namespace."""
    program = _tasks([sys.executable, "-m", "redis_ha"])
    checkout = _tasks([sys.executable, "-m", "invoke"])
    assert program == checkout
    assert len(program) > 30
    undocumented = [name for name, help in program.items() if not help or "\n" in help.strip()]
    assert undocumented == []


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert __version__ == version("redis-ha-runbooks")
    r = subprocess.run(
        [sys.executable, "-m", "redis_ha", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.strip() == f"redis-ha {__version__}"


def test_invokes_dry_flag_is_refused_not_taken_for_a_dry_run() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "redis_ha", "--dry", "failover.manual"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --dry does not apply here; use the task's own --dry-run"


def test_invoke_in_the_checkout_keeps_working() -> None:
    r = run_invoke("runbooks.check")
    assert r.returncode == 0, r.stderr
    assert "are consistent" in r.stdout
