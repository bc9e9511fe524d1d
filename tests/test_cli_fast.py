"""`status` and `health` answer without the task machinery: the `redis-ha` command's fast path
(cli/quick.py) loads neither invoke nor rich for `status --json`, and gives the same answers and
exit codes as the invoke task. Against the shared lab (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from redis_ha.cli.quick import fast_args
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status", "--json"], ("status", None, True)),
        (["health"], ("health", None, False)),
        (["health", "-j", "-i", "x.yaml"], ("health", "x.yaml", True)),
        (["status", "--inventory=x.yaml"], ("status", "x.yaml", False)),
        (["status", "--help"], None),
        (["status", "--inventory"], None),
        (["--list"], None),
        (["-e", "status"], None),
        (["failover.manual", "--yes"], None),
        ([], None),
    ],
)
def test_fast_args_takes_only_plain_status_and_health(
    argv: list[str], expected: tuple[str, str | None, bool] | None
) -> None:
    assert fast_args(argv) == expected


PROBE = """
import sys
sys.argv = ["redis-ha", *sys.argv[1:]]
from redis_ha.cli import app
try:
    app.main()
except SystemExit as e:
    code = e.code
print("LOADED", "invoke" in sys.modules, "rich" in sys.modules, "redis_ha.runner" in sys.modules,
      "CODE", code, file=sys.stderr)
"""


def probe(*args: str) -> tuple[str, str]:
    p = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=30
    )
    return p.stdout, p.stderr.strip().splitlines()[-1]


@pytest.mark.lab
def test_status_json_loads_no_invoke_no_rich_and_matches_the_task(lab: Lab) -> None:
    out, loaded = probe("status", "--json", "--inventory", str(lab.inv.path))
    assert loaded == "LOADED False False False CODE 0", loaded
    fast = json.loads(out)
    task = run_invoke("status", "--json", inventory=lab.inv.path)
    assert task.returncode == 0, task.stderr
    slow = json.loads(task.stdout)
    assert fast["primary"] == slow["primary"] is not None
    assert fast.keys() == slow.keys()


@pytest.mark.lab
def test_health_fast_path_exit_codes_match_the_task(lab: Lab) -> None:
    _, loaded = probe("health", "--json", "--inventory", str(lab.inv.path))
    task = run_invoke("health", "--json", inventory=lab.inv.path)
    assert loaded.endswith(f"CODE {task.returncode}"), (loaded, task.returncode)
    assert "LOADED False False False" in loaded


def test_bad_inventory_answers_as_the_task_does_without_invoke() -> None:
    """status: one error line, exit 1; health: UNKNOWN, exit 3 (never "down"); no traceback."""
    bad = "/nonexistent/inventory.yaml"
    for cmd, code in (("status", 1), ("health", 3)):
        _, loaded = probe(cmd, "--inventory", bad)
        assert loaded == f"LOADED False False False CODE {code}", loaded
        fast = subprocess.run(
            [sys.executable, "-m", "redis_ha", cmd, "-i", bad],
            capture_output=True,
            text=True,
            timeout=30,
        )
        task = run_invoke(cmd, inventory=bad)
        assert fast.returncode == task.returncode == code
        assert (fast.stdout, fast.stderr.strip()) == (task.stdout, task.stderr.strip())
        assert "Traceback" not in fast.stderr + fast.stdout
