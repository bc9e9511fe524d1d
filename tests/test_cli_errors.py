"""Bad input to any task: one readable line, a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

from .conftest import run_invoke


@pytest.mark.parametrize(
    "args",
    [
        ("bench.failover", "--runs", "x"),
        ("bench.rebuild", "--runs", "two"),
        ("lab.up", "--timeout", "soon"),
        ("drill.start", "--scenario", "replica-crash", "--rate", "fast"),
    ],
)
def test_badly_typed_option_is_one_line(args: tuple[str, ...]) -> None:
    r = run_invoke(*args, timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    assert "must be an int, got" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_splitbrain_detect_on_a_dead_cluster_does_not_claim_one_primary(lab: Lab) -> None:
    for n in lab.inv.nodes:
        lab.stop(n.name, kill=True)
    r = run_invoke("splitbrain.detect", inventory=lab.inv.path)
    assert "one primary, all Sentinels agree" not in r.stdout
    assert "0 primary(ies) reachable" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("scenario", ["promote", "sentinel"])
def test_splitbrain_drill_on_a_lab_that_is_not_up_is_one_line(scenario: str, tmp_path) -> None:
    path = write_lab_inventory(tmp_path)
    (tmp_path / "password").write_text("pw\n")
    r = run_invoke("drill.splitbrain", "--scenario", scenario, inventory=path, timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_config_render_to_an_unwritable_folder_is_one_line(tmp_path) -> None:
    path = write_lab_inventory(tmp_path)
    (tmp_path / "password").write_text("s3cret-render-pw\n")
    (tmp_path / "file").write_text("")
    r = run_invoke("config.render", "--out", str(tmp_path / "file" / "out"), inventory=path)
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    assert "cannot write" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "s3cret-render-pw" not in r.stdout + r.stderr
