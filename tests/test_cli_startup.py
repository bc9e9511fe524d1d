"""Every command pays for what building the task collection imports, and its hints name the
command the operator typed: `invoke X` in a checkout, `redis-ha X` for the installed tool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redis_ha import choices, drills, journal
from redis_ha import splitbrain as sb
from redis_ha.cli import names
from redis_ha.lab import faults, scenarios
from redis_ha.triage import Leaf

from .conftest import ROOT

# The task modules that building the collection imports, less those being rewritten elsewhere
# (cli/cluster.py, cli/monitor.py and cli/quick.py still load redis-py at import).
LIGHT = (
    "bench",
    "check",
    "config",
    "demo",
    "drill",
    "failover",
    "incident",
    "journal",
    "lab",
    "procedures",
    "repair",
    "replica",
    "rollback",
    "runbooks",
    "splitbrain",
)
# What only a task body may load: each costs tens of ms on every command otherwise.
HEAVY = (
    "redis",
    "rich",
    "prometheus_client",
    "redis_ha.inventory",
    "redis_ha.facts",
    "redis_ha.runner",
    "redis_ha.playbook",
    "redis_ha.triage",
    "redis_ha.drills",
    "redis_ha.lab.cluster",
    "redis_ha.lab.faults",
    "redis_ha.dockerlab.lab",
    "redis_ha.actions.registry",
)

PROBE = """
import json, sys
for m in sys.argv[1:]:
    __import__("redis_ha.cli." + m)
print(json.dumps(sorted(sys.modules)))
"""


def test_task_modules_import_no_heavy_dependency() -> None:
    p = subprocess.run(
        [sys.executable, "-c", PROBE, *LIGHT], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    loaded = set(json.loads(p.stdout))
    assert {f"redis_ha.cli.{m}" for m in LIGHT} <= loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_help_choices_name_what_the_code_accepts() -> None:
    """choices.py lists these for the help texts; the code keyed by them must agree."""
    assert tuple(drills.SCENARIOS) == choices.DRILL_SCENARIOS
    assert tuple(faults.KINDS) == choices.FAULT_KINDS
    assert scenarios.SCENARIOS == choices.SPLITBRAIN_SCENARIOS
    assert sb.POLICIES == choices.SALVAGE_POLICIES and sb.DEFAULT_POLICY in sb.POLICIES


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("/opt/redis-ha/.venv/bin/redis-ha", "redis-ha"),
        ("redis-ha", "redis-ha"),
        ("/usr/lib/python3/site-packages/redis_ha/__main__.py", "redis-ha"),
        ("/work/.venv/bin/invoke", "invoke"),
        ("/work/.venv/lib/python3/site-packages/invoke/__main__.py", "invoke"),
        ("/work/.venv/bin/pytest", "invoke"),
        ("-c", "invoke"),
        ("", "invoke"),
    ],
)
def test_program_is_read_from_how_the_process_started(argv0: str, expected: str) -> None:
    assert names.program(argv0) == expected


def test_command_prefixes_the_running_program(monkeypatch: pytest.MonkeyPatch) -> None:
    hint = "failover.verify --old redis-1"
    monkeypatch.setattr(sys, "argv", ["/x/bin/redis-ha", "journal.show"])
    assert names.command(hint) == f"redis-ha {hint}"
    monkeypatch.setattr(sys, "argv", ["/x/bin/invoke", "journal.show"])
    assert names.command(hint) == f"invoke {hint}"
    monkeypatch.setattr(sys, "argv", [])
    assert names.command("status") == "invoke status"


@pytest.mark.parametrize("argv0", ["/x/bin/redis-ha", "/x/bin/invoke"])
def test_a_findings_command_names_the_running_program(
    monkeypatch: pytest.MonkeyPatch, argv0: str
) -> None:
    """The triage table keeps task names; the command is made where the finding is."""
    monkeypatch.setattr(sys, "argv", [argv0, "incident"])
    p = Path(argv0).name
    leaf = Leaf("replica-rebuild", "diagnose", "replica.rebuild", "--node {node}")
    assert leaf.command({"node": "redis-2"}) == f"{p} replica.rebuild --node redis-2"
    first = Leaf("failover-manual", "preflight", "failover.manual", dry_first=True)
    assert first.command({}) == f"{p} failover.manual --dry-run, then {p} failover.manual"


def _console_script() -> Path:
    script = Path(sys.executable).parent / "redis-ha"
    if not script.exists():
        pytest.skip(f"no redis-ha console script beside {sys.executable} (not pip-installed)")
    return script


@pytest.mark.parametrize(
    ("how", "prefix"),
    [
        ("invoke", "invoke"),  # a checkout: tasks.py
        ("python -m redis_ha", "redis-ha"),
        ("console script", "redis-ha"),  # the installed tool
    ],
)
def test_a_printed_hint_names_the_command_typed(tmp_path: Path, how: str, prefix: str) -> None:
    """`journal.show --run X` for a run that does not exist points at `journal.list`, as the
    operator would type it in the same shell."""
    if how == "console script":
        argv = [str(_console_script())]
    else:
        argv = [sys.executable, "-m", how.split()[-1]]
    p = subprocess.run(
        [*argv, "journal.show", "--run", "no-such-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, journal.ENV_DIR: str(tmp_path)},
    )
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert f"(see: {prefix} journal.list)" in p.stderr
    other = "redis-ha" if prefix == "invoke" else "invoke"
    assert f"{other} journal.list" not in p.stderr
