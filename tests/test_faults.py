"""lab.fault: refuses non-labs, names unknown nodes, really freezes and restarts processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from redis_ha import facts as factsmod
from redis_ha.lab import faults
from redis_ha.lab.cluster import Lab, pid_frozen
from redis_ha.lab.ports import write_lab_inventory
from tests.conftest import run_invoke

pytestmark = pytest.mark.lab


def test_refuses_an_inventory_not_marked_lab(tmp_path: Path) -> None:
    path = write_lab_inventory(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["lab"] = False
    path.write_text(yaml.safe_dump(data))
    res = run_invoke("lab.fault", "--kind", "crash", "--node", "redis-1", inventory=path)
    assert res.returncode != 0
    assert "not marked 'lab: true'" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_unknown_node_and_kind_are_one_clear_line(lab: Lab) -> None:
    res = run_invoke("lab.fault", "--kind", "crash", "--node", "redis-9", inventory=lab.inv.path)
    assert res.returncode != 0
    assert "unknown node 'redis-9'" in res.stderr and "redis-1" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_invoke("lab.fault", "--kind", "melt", "--node", "redis-1", inventory=lab.inv.path)
    assert res.returncode != 0
    assert "unknown fault kind 'melt'" in res.stderr and "restart-empty" in res.stderr


def test_dry_run_touches_nothing(lab: Lab) -> None:
    replica = next(n for n in lab.inv.nodes if n != lab.current_primary())
    pid = lab.pid(replica.name)
    res = run_invoke(
        "lab.fault", "--kind", "crash", "--node", replica.name, "--dry-run", inventory=lab.inv.path
    )
    assert res.returncode == 0, res.stderr
    assert "dry run" in res.stdout
    assert lab.pid(replica.name) == pid


def test_freeze_then_resume_a_replica(lab: Lab) -> None:
    replica = next(n for n in lab.inv.nodes if n != lab.current_primary())
    res = run_invoke(
        "lab.fault", "--kind", "freeze", "--node", replica.name, inventory=lab.inv.path
    )
    pid = lab.pid(replica.name)
    assert pid is not None
    try:
        assert res.returncode == 0, res.stderr
        assert f"pid {pid}" in res.stdout and "was replica" in res.stdout
        assert pid_frozen(pid)
        assert not factsmod.node_facts(lab.inv, replica, timeout=0.3).up  # it hangs
    finally:
        res = run_invoke(
            "lab.fault", "--kind", "resume", "--node", replica.name, inventory=lab.inv.path
        )
    assert res.returncode == 0, res.stderr
    assert not pid_frozen(pid)
    assert factsmod.node_facts(lab.inv, replica, timeout=1).up


def test_restart_empty_replica_comes_back_with_a_new_pid_and_resyncs(lab: Lab) -> None:
    replica = next(n for n in lab.inv.nodes if n != lab.current_primary())
    old = lab.pid(replica.name)
    res = faults.inject(lab.inv, "restart-empty", replica.name)
    assert res.role == "replica" and res.pid == old
    assert res.new_pid is not None and res.new_pid != old and lab.pid(replica.name) == res.new_pid
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        f = factsmod.node_facts(lab.inv, replica)
        if f.up and f.role == "replica" and f.link_up:
            break
        time.sleep(0.1)
    assert f.role == "replica" and f.link_up  # its own config file made it a replica again
