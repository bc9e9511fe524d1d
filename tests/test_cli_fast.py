"""`status` and `health` answer without the task machinery: the `redis-ha` command's fast path
(cli/quick.py) loads neither invoke nor rich for `status --json`, and gives the same answers and
exit codes as the invoke task. Against the shared lab (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_ha import inventory
from redis_ha import view as viewmod
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


# What moves between two looks a second apart on a live lab: timings and replication offsets.
VOLATILE = frozenset({"elapsed_ms", "offset", "lag_bytes", "lag_ms"})


def stable(obj: Any) -> Any:
    """`obj` without the VOLATILE keys, at any depth."""
    if isinstance(obj, dict):
        return {k: stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj


def both_paths(cmd: str, inventory: Path, env: dict[str, str] | None = None) -> tuple[Any, Any]:
    """(fast path, task path) of `cmd --json`: the `redis-ha` command as a process, asserted
    to load no invoke, rich, runner or redis-py, then `invoke CMD --json`; same exit code."""
    p = subprocess.run(
        [sys.executable, "-c", PROBE_REDIS, cmd, "--json", "--inventory", str(inventory)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    loaded = p.stderr.strip().splitlines()[-1]
    task = run_invoke(cmd, "--json", inventory=inventory, env=env)
    assert loaded == f"LOADED False False False False CODE {task.returncode}", (loaded, p.stderr)
    return json.loads(p.stdout), json.loads(task.stdout)


PROBE_REDIS = PROBE.replace(
    '"redis_ha.runner" in sys.modules,', '"redis_ha.runner" in sys.modules, "redis" in sys.modules,'
)


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


def _wait_healthy(lab: Lab, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not viewmod.take(lab.inv).health.healthy:
        assert time.monotonic() < deadline, "the lab did not become healthy"
        time.sleep(0.2)


@pytest.mark.lab
@pytest.mark.parametrize("cmd", ["status", "health"])
def test_fast_json_is_the_tasks_json_on_a_live_lab(lab: Lab, cmd: str) -> None:
    """Key for key, value for value (but timings and offsets), and no redis-py loaded."""
    _wait_healthy(lab)  # the lab may still be settling from the last test (a replica syncing)
    fast, task = both_paths(cmd, lab.inv.path)
    assert stable(fast) == stable(task)
    assert fast["level"] == "healthy", fast


@pytest.mark.lab
def test_fast_json_with_a_node_down_is_the_tasks(lab: Lab) -> None:
    replica = next(n for n in lab.inv.nodes if n.name != lab.current_primary().name)
    lab.stop(replica.name)  # the fixture starts it again
    fast, task = both_paths("status", lab.inv.path)
    assert stable(fast) == stable(task)
    (down,) = [n for n in fast["nodes"] if not n["up"]]
    assert (down["name"], down["error"]) == (replica.name, "connection refused (not running?)")
    h_fast, h_task = both_paths("health", lab.inv.path)
    assert stable(h_fast) == stable(h_task)
    assert h_fast["level"] == "degraded" and any(replica.name in p for p in h_fast["problems"])


@pytest.mark.lab
def test_a_wrong_password_is_unknown_exit_3_on_both_paths(lab: Lab, tmp_path: Path) -> None:
    doc = yaml.safe_load(lab.inv.path.read_text())
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    doc["auth"]["password_file"] = str(wrong)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(doc))
    fast, task = both_paths("health", inv)
    assert fast == task
    assert (fast["level"], fast["exit"]) == ("unknown", 3), fast
    assert str(wrong) in fast["check"] and "not-the-password" not in json.dumps(fast)
    s_fast, s_task = both_paths("status", inv)
    assert stable(s_fast) == stable(s_task)
    errors = {n["error"] for n in s_fast["nodes"] + s_fast["sentinels"]}
    assert errors == {f"authentication failed (wrong password?); check {inv_check(inv)}"}


def inv_check(path: Path) -> str:
    return inventory.load(path).credential_source()


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
