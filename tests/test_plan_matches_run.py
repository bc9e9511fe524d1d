"""For every playbook, on the lab: the plan `--dry-run` prints is the plan the real run that
follows journals, operation for operation (issue 11's acceptance test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_ha import appconfig, inventory
from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab
from tests.conftest import run_invoke

pytestmark = pytest.mark.lab


def journaled_plans(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(step, [(target, command), ...]) of every step plan a run journaled, in order."""
    return [
        (r["step"], [(o["target"], o["command"]) for o in r["plan"]["ops"]])
        for r in journalmod.read(path)
        if r["event"] == "plan" and not r.get("undo") and "plan" in r
    ]


def _runs(jdir: Path, procedure: str) -> dict[bool, Path]:
    """The journal of the dry run (True) and of the real run (False) of `procedure`."""
    out = {}
    for p in journalmod.runs(jdir):
        start = next(r for r in journalmod.read(p) if r["event"] == "start")
        if start["procedure"] == procedure:
            out[bool(start["dry_run"])] = p
    return out


def _rollback_inventory(lab: Lab, tmp_path: Path) -> Path:
    """The lab inventory with its own app env file (Sentinel mode), so the lab's is untouched."""
    data = yaml.safe_load(lab.inv.path.read_text())
    data["app"] = {"config_backend": "envfile", "env_file": str(tmp_path / "app.env")}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    appconfig.write_lab_env(inventory.load(path))
    return path


def _dry_then_real(task: str, procedure: str, inv: Path, jdir: Path) -> dict[bool, Path]:
    env: dict[str, Any] = {journalmod.ENV_DIR: str(jdir)}
    dry = run_invoke(task, "--dry-run", inventory=inv, env=env, timeout=180)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    real = run_invoke(task, "--yes", inventory=inv, env=env, timeout=180)
    assert real.returncode == 0, real.stdout + real.stderr
    runs = _runs(jdir, procedure)
    assert set(runs) == {True, False}
    return runs


def test_rollback_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    inv = _rollback_inventory(lab, tmp_path)
    runs = _dry_then_real("rollback", "rollback", inv, tmp_path / "journal")
    dry, real = journaled_plans(runs[True]), journaled_plans(runs[False])
    assert [s for s, _ in real] == [
        "preflight",
        "warm-sessions",
        "switch-config",
        "redeploy",
        "validate",
        "sentinel-intact",
        "report",
    ]
    assert all(ops for _, ops in real)  # every step shows what it does (the warm-up too)
    assert dry == real
    start = next(r for r in journalmod.read(runs[False]) if r["event"] == "start")
    assert sorted(start["inputs"]) == ["no_warm", "yes"]


def test_rollback_undo_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    inv = _rollback_inventory(lab, tmp_path)
    env = {journalmod.ENV_DIR: str(tmp_path / "before")}
    first = run_invoke("rollback", "--yes", "--no-warm", inventory=inv, env=env, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr  # the app is on the single instance
    runs = _dry_then_real("rollback.undo", "rollback-undo", inv, tmp_path / "journal")
    dry, real = journaled_plans(runs[True]), journaled_plans(runs[False])
    assert len(real) == 7 and all(ops for _, ops in real)
    assert dry == real
