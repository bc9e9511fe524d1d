"""A step's timeout may be an operator option (`timeout: $sync_timeout`), resolved at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_ha import inventory, playbook
from redis_ha.actions.registry import Context
from redis_ha.lab.ports import write_lab_inventory
from redis_ha.runner import TIMEOUT_PARAM_SLACK_S, Runner, RunnerError

from .conftest import ROOT


def test_replica_rebuild_sync_step_follows_the_operator_option() -> None:
    pb = playbook.load(ROOT / "playbooks" / "replica-rebuild.yaml")
    step = next(s for s in pb.steps if s.id == "full-sync")
    assert step.timeout_param == "sync_timeout"


def runner_for(tmp_path: Path, params: dict) -> Runner:
    pb = playbook.load(ROOT / "playbooks" / "replica-rebuild.yaml")
    r = Runner.__new__(Runner)  # no journal, no terminal: only the timeout arithmetic is tested
    r.pb = pb
    r.ctx = Context(inv=inventory.load(write_lab_inventory(tmp_path)))
    r.params = params
    return r


def test_step_timeout_is_the_option_plus_slack(tmp_path: Path) -> None:
    r = runner_for(tmp_path, {"sync_timeout": 1800.0})
    sync = next(s for s in r.pb.steps if s.id == "full-sync")
    assert r.step_timeout(sync) == 1800.0 + TIMEOUT_PARAM_SLACK_S
    other = next(s for s in r.pb.steps if s.id != "full-sync" and not s.timeout_param)
    assert r.step_timeout(other) == other.timeout


def test_missing_or_bad_option_is_a_clear_error(tmp_path: Path) -> None:
    sync = next(s for s in runner_for(tmp_path, {}).pb.steps if s.id == "full-sync")
    with pytest.raises(RunnerError, match="pass --sync-timeout"):
        runner_for(tmp_path, {}).step_timeout(sync)
    with pytest.raises(RunnerError, match="--sync-timeout must be a number of seconds"):
        runner_for(tmp_path, {"sync_timeout": "soon"}).step_timeout(sync)


def test_a_non_parameter_string_timeout_is_still_refused(tmp_path: Path) -> None:
    pbdir = tmp_path / "playbooks"
    rbdir = tmp_path / "runbooks"
    pbdir.mkdir()
    rbdir.mkdir()
    (rbdir / "t.md").write_text(
        "---\ntitle: T\nwhen: test\nduration: 1 s\n---\n# T\n\n## 1. Look {#look}\nLook.\n"
    )
    (pbdir / "t.yaml").write_text(
        "runbook: runbooks/t.md\nchanges: false\nsteps:\n"
        "  - id: look\n    action: cluster.show_status\n    timeout: soon\n"
    )
    problems = playbook.check_all(tmp_path)
    assert any(
        "timeout must be a positive number of seconds, got 'soon'" in str(p) for p in problems
    )
