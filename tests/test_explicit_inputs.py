"""Operator options reach a step only as `$name` arguments in its playbook: every input a
playbook reads is an option of the task that runs it and the other way round, and no action or
check reads operator options any other way (issue 11: no hidden inputs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from redis_ha import playbook as playbookmod
from redis_ha.actions import registry
from redis_ha.cli import check, failover, repair, replica, rollback, splitbrain
from redis_ha.inventory import Inventory

ACTIONS_DIR = Path(registry.__file__).parent
COMMON = {"inventory", "dry_run", "resume", "target_name"}  # the runner's own options

# task -> the playbook it runs
PROCEDURES = [
    (failover.manual, "failover-manual"),
    (failover.verify, "failover-automatic"),
    (replica.rebuild, "replica-rebuild"),
    (splitbrain.recover, "split-brain"),
    (rollback.run, "rollback"),
    (rollback.undo, "rollback-undo"),
    (check.check, "health-check"),
    (repair.repair, "sentinel-repair"),
    (repair.relieve, "memory-pressure"),
    (repair.unpause, "writes-paused"),
    (repair.converge, "config-drift"),
]


def options(task) -> set[str]:
    return {a.name.replace("-", "_") for a in task.get_arguments()} - COMMON


@pytest.mark.parametrize(("task", "name"), PROCEDURES, ids=[n for _, n in PROCEDURES])
def test_task_options_are_the_playbook_inputs(task, name) -> None:
    pb = playbookmod.load(name)
    inputs = set(pb.inputs())
    # `--yes` is the runner's too; a playbook may read it as an input (the rollback does).
    assert inputs - {"yes"} == options(task) - {"yes"}, (sorted(inputs), sorted(options(task)))


def test_the_context_carries_no_operator_options() -> None:
    ctx = registry.Context(Inventory.__new__(Inventory))
    assert not hasattr(ctx, "params")
    assert not hasattr(ctx, "dry_run")


def test_no_action_reads_options_or_gathers_facts_on_its_own() -> None:
    hidden = re.compile(r"\bctx\.(params|health\(|facts\()|factsmod\.gather\(|facts\.gather\(")
    found = [
        f"{p.name}:{i}: {line.strip()}"
        for p in sorted(ACTIONS_DIR.glob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if hidden.search(line)
    ]
    assert found == []


def test_every_action_has_a_plan_and_every_check_takes_a_view() -> None:
    registry.load_all()
    import inspect

    for spec in registry.ACTIONS.values():
        assert spec.apply is not None, spec.name
        first = next(iter(inspect.signature(spec.fn).parameters))
        assert first == "view", f"{spec.name}: plan function takes {first!r} first"
    for spec in registry.CHECKS.values():
        first = next(iter(inspect.signature(spec.fn).parameters))
        assert first == "view", f"{spec.name}: check takes {first!r} first"
