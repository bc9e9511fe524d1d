"""Control backends: the lab's local processes work; the others refuse plainly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from redis_ha import control, inventory
from redis_ha.conn import client
from redis_ha.errors import LabError
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import lab_inventory_dict


def _inv(tmp_path: Path, **top: object) -> inventory.Inventory:
    d = lab_inventory_dict(tmp_path)
    d.update(top)
    return inventory.from_dict(d, tmp_path / "inventory.yaml")


@pytest.mark.parametrize("backend", ["ssh", "railway", "docker"])
def test_unimplemented_backends_refuse_every_operation(tmp_path, backend):
    inv = _inv(tmp_path, control={"backend": backend})
    node = inv.nodes[1]
    ctl = control.for_node(inv, node)
    assert ctl.backend == backend
    for call in (
        lambda: ctl.is_running(node),
        lambda: ctl.stop(node),
        lambda: ctl.start(node),
        lambda: ctl.restart(node, replicaof=inv.nodes[0]),
    ):
        with pytest.raises(control.ControlError, match="not supported yet"):
            call()
    assert ctl.log_tail(node) is None and ctl.mem_available(node) is None


def test_node_level_backend_overrides_inventory(tmp_path):
    inv = _inv(tmp_path)
    node = dataclasses.replace(inv.nodes[2], control={"backend": "docker"})
    assert control.for_node(inv, node).backend == "docker"
    assert control.for_node(inv, inv.nodes[1]).backend == "local"


def test_local_backend_refuses_non_lab_inventory(tmp_path):
    inv = _inv(tmp_path, lab=False)
    with pytest.raises(LabError, match="not marked 'lab: true'"):
        control.for_node(inv, inv.nodes[0])


@pytest.mark.lab
def test_local_restart_applies_overrides_from_the_first_instant(lab: Lab):
    inv = lab.inv
    primary = lab.current_primary()
    node = next(n for n in inv.nodes if n != primary)
    ctl = control.for_node(inv, node)
    assert ctl.is_running(node)
    old_pid = lab.pid(node.name)
    assert (ctl.mem_available(node) or 0) > 0
    assert ctl.log_tail(node, 5)
    ctl.restart(node, replicaof=primary, overrides={"replica-priority": "0"})
    assert lab.pid(node.name) not in (None, old_pid)
    c = client(inv, node)
    try:
        assert c.config_get("replica-priority")["replica-priority"] == "0"
    finally:
        c.config_set("replica-priority", str(inv.settings.replica_priority))
        c.close()
