"""A production target is confirmed by its name before the first change (issue 15, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke
from .test_runner import PB, priority, replica_of, reset_priorities


@pytest.fixture
def prod(lab: Lab, tmp_path: Path) -> Path:
    """The lab's cluster described as a production inventory (`lab: false`, its own name)."""
    d = yaml.safe_load(Path(lab.inv.path).read_text())
    d.update(lab=False, name="prod-east", lab_dir=str(lab.inv.lab_dir))
    d["auth"]["password_file"] = str(lab.inv.auth.password_file)
    p = tmp_path / "prod.yaml"
    p.write_text(yaml.safe_dump(d))
    yield p
    reset_priorities(lab)


def _run(prod: Path, tmp_path: Path, node: str, *extra: str) -> tuple[int, str, str]:
    argv = ["runbooks.run", PB, "--yes", *extra]
    for kv in (f"node={node}", "priority=42", "expect=42"):
        argv += ["--param", kv]
    r = run_invoke(*argv, inventory=prod, env={journalmod.ENV_DIR: str(tmp_path / "j")})
    return r.returncode, r.stdout, r.stderr


def test_yes_on_production_needs_the_name(lab: Lab, prod: Path, tmp_path: Path) -> None:
    node = replica_of(lab)
    code, out, err = _run(prod, tmp_path, node)
    assert code == 1 and "Traceback" not in out + err
    assert err.strip().splitlines() == [
        "error: 'prod-east' is not a lab: --yes needs --target-name prod-east as well "
        "(nothing was changed)"
    ]
    assert priority(lab.inv, node) == "100"

    code, out, err = _run(prod, tmp_path, node, "--target-name", "prod-west")
    assert code == 1 and "'prod-west' is not this inventory's cluster 'prod-east'" in err
    assert priority(lab.inv, node) == "100"

    code, out, err = _run(prod, tmp_path, node, "--target-name", "prod-east")
    assert code == 0, out + err
    assert "COMPLETED" in out


def test_dry_run_needs_no_name(lab: Lab, prod: Path, tmp_path: Path) -> None:
    node = replica_of(lab)
    code, out, err = _run(prod, tmp_path, node, "--dry-run")
    assert code == 0, out + err
    assert priority(lab.inv, node) == "100"
