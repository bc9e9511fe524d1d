"""The dry run is the real run minus execution: for every playbook, the plan `--dry-run` prints
and journals equals, operation for operation, the plan the real run that follows journals."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke

pytestmark = pytest.mark.lab


def journaled_plans(path: Path) -> list[tuple[str, bool, list[tuple[str, str]]]]:
    """(step, undo, [(target, command)]) of every plan record of one run, in order."""
    out = []
    for r in journalmod.read(path):
        if r["event"] == "plan":
            ops = [(o["target"], o["command"]) for o in (r.get("plan") or {}).get("ops", [])]
            out.append((r["step"], bool(r.get("undo")), ops))
    return out


def test_replica_rebuild_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """A healthy replica rebuilt with --force: the same seven operations, dry and real."""
    primary = lab.current_primary().name
    node = next(n.name for n in lab.inv.nodes if n.name != primary)
    args = ("replica.rebuild", "--node", node, "--force")
    plans = []
    for mode in ("--dry-run", "--yes"):
        jdir = tmp_path / mode.strip("-")
        env = {journalmod.ENV_DIR: str(jdir)}
        r = run_invoke(*args, mode, inventory=lab.inv.path, env=env, timeout=180)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        (run,) = journalmod.runs(jdir)
        recs = journalmod.read(run)
        assert all(x["dry_run"] == (mode == "--dry-run") for x in recs if x["event"] == "plan")
        plans.append(journaled_plans(run))
    dry, real = plans
    assert dry == real
    steps = {s: ops for s, _, ops in real}
    assert list(steps) == ["diagnose", "unpromotable", "restart", "full-sync", "restore"]
    assert steps["unpromotable"] == [
        (node, "CONFIG SET replica-priority 0"),
        (node, "CONFIG SET replica-announced no"),
    ]
    stop, start = steps["restart"]
    assert stop[0] == node and stop[1].startswith("stop (")
    assert start[1].startswith(f"start as a replica of {primary} with replica-priority 0")
    prio = lab.inv.settings.replica_priority
    assert steps["restore"][1:] == [
        (node, f"CONFIG SET replica-priority {prio}"),
        (node, "CONFIG SET replica-announced yes"),
        (node, "CONFIG REWRITE"),
    ]
