"""`invoke demo` end to end on a lab of its own (production timings), and its refusal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from redis_ha import inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

from .conftest import run_invoke

pytestmark = pytest.mark.lab


def test_demo_refuses_a_non_lab_inventory(tmp_path: Path) -> None:
    path = write_lab_inventory(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["lab"] = False
    path.write_text(yaml.safe_dump(data))
    r = run_invoke("demo", inventory=path, timeout=60)
    assert r.returncode != 0
    assert "not marked 'lab: true'" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_demo_runs_the_whole_story_and_cleans_up(tmp_path: Path) -> None:
    path = write_lab_inventory(tmp_path, down_after_ms=3000, failover_timeout_ms=10000)
    lab = Lab(inventory.load(path))
    try:
        r = run_invoke("demo", "--rate", "500", inventory=path, timeout=150)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "COMPLETED failover-manual" in out
        assert "automatic failover:" in out
        rows = {
            m["event"]: m
            for m in re.finditer(
                r"│ (?P<event>planned|primary)\s.*?│\s+(?P<lost>\d+) │\s+(?P<stall>[\d.]+) s │"
                r"\s+(?P<failed>\d+) │",
                out,
            )
        }
        assert set(rows) == {"planned", "primary"}, out
        assert rows["planned"]["lost"] == "0" and rows["planned"]["failed"] == "0", out
        assert float(rows["planned"]["stall"]) < 2.5
        assert rows["primary"]["lost"] == "0"
        assert float(rows["primary"]["stall"]) < 3.0 + 1.5 + 0.5  # down-after + 1.5 s, margin
        assert lab.running() == {}  # lab down at the end
    finally:
        lab.down()


def test_a_procedure_that_hangs_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    from redis_ha.cli import demo
    from redis_ha.errors import HAError

    def hang(argv: list[str], **kw: object) -> None:
        raise subprocess.TimeoutExpired(argv, 120)

    monkeypatch.setattr(demo.subprocess, "run", hang)
    with pytest.raises(HAError, match="failover.manual did not finish within 120 s"):
        demo._procedure(["failover.manual", "--yes"], tmp_path / "lab.yaml")
