"""The acceptance test of plan/apply: on the lab, the plan `--dry-run` prints is, operation for
operation, the plan the real run that follows journals (issue 11). One function per playbook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from redis_ha import facts as factsmod
from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke

pytestmark = pytest.mark.lab


def journaled_plans(path: Path) -> list[tuple[str, bool, list[tuple[str, str]]]]:
    """(step, undo, [(target, command)...]) of every plan record of one journal dir's only run."""
    (run,) = journalmod.runs(path)
    out = []
    for r in journalmod.read(run):
        if r.get("event") != "plan":
            continue
        plan: dict[str, Any] = r.get("plan") or {}
        ops = [(o["target"], o["command"]) for o in plan.get("ops", [])]
        out.append((r["step"], bool(r.get("undo")), ops))
    return out


def _run(tmp_path: Path, lab: Lab, name: str, *args: str) -> Path:
    d = tmp_path / name
    r = run_invoke(*args, inventory=lab.inv.path, env={journalmod.ENV_DIR: str(d)}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return d


def test_failover_manual_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """With --to and --via: steer (and its rival), the switch, the restore, all as shown."""
    inv = lab.inv
    old = lab.current_primary().name
    target = sorted(n.name for n in inv.nodes if n.name != old)[-1]
    via = inv.sentinels[0].name
    args = ("failover.manual", "--to", target, "--via", via)
    dry = journaled_plans(_run(tmp_path, lab, "dry", *args, "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", *args, "--yes"))
    assert [s for s, _, _ in dry] == ["steer", "switch", "restore-priority"], dry
    assert dry == real
    steer, switch, restore = (ops for _, _, ops in dry)
    assert (target, "CONFIG SET replica-priority 1") in steer
    assert (via, f"SENTINEL FAILOVER {inv.master_name}") in switch
    assert (target, f"CONFIG SET replica-priority {inv.settings.replica_priority}") in restore
    assert lab.current_primary().name == target  # the run did switch


def test_failover_automatic_dry_run_is_the_run(lab: Lab, tmp_path: Path) -> None:
    """failover.verify (read-only): the old primary's read and the log read, as shown."""
    f = factsmod.gather(lab.inv)
    old = sorted(n.name for n in f.nodes if n.role == "replica")[0]
    args = ("failover.verify", "--old", old)
    dry = journaled_plans(_run(tmp_path, lab, "dry", *args, "--dry-run"))
    real = journaled_plans(_run(tmp_path, lab, "real", *args))
    assert dry == real
    assert dry == [
        ("old-primary", False, [(old, "INFO replication")]),
        ("timeline", False, [("sentinels", "read the Sentinel logs (last failover)")]),
    ]
