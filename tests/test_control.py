"""Control backends by name: the registry, the inventory's names, the safe-start choice.

What a backend does to processes is tests/test_control_contract.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from redis_ha import control, inventory
from redis_ha.control.lab import LabProcesses
from redis_ha.errors import InventoryError, LabError
from redis_ha.lab.ports import lab_inventory_dict


def _inv(tmp_path: Path, **top: object) -> inventory.Inventory:
    d = lab_inventory_dict(tmp_path)
    d.update(top)
    return inventory.from_dict(d, tmp_path / "inventory.yaml")


def test_the_registry_names_the_lab_and_the_placeholders():
    assert control.backends() == ("docker", "lab", "railway", "ssh")
    assert control.names() == ("docker", "lab", "local", "railway", "ssh")
    for name in control.backends():
        assert control.backend_class(name).backend == name


@pytest.mark.parametrize("name", ["lab", "local"])
def test_local_is_the_lab_backend_under_its_old_name(tmp_path, name):
    inv = _inv(tmp_path, control={"backend": name})
    ctl = control.for_node(inv, inv.nodes[0])
    assert isinstance(ctl, LabProcesses) and ctl.backend == "lab"


def test_the_default_backend_is_the_lab(tmp_path):
    d = lab_inventory_dict(tmp_path)
    del d["control"]
    inv = inventory.from_dict(d, tmp_path / "inventory.yaml")
    assert control.backend_name(inv, inv.nodes[0]) == "lab"
    assert isinstance(control.for_node(inv, inv.nodes[0]), LabProcesses)


def test_node_level_backend_overrides_inventory(tmp_path):
    inv = _inv(tmp_path)
    node = dataclasses.replace(inv.nodes[2], control={"backend": "docker"})
    assert control.backend_name(inv, node) == "docker"
    assert control.backend_name(inv, inv.nodes[1]) == "lab"
    assert control.for_node(inv, node).backend == "docker"
    assert control.for_node(inv, inv.nodes[1]).backend == "lab"


def test_an_unknown_backend_is_one_line_listing_the_known_ones(tmp_path):
    inv = _inv(tmp_path)
    node = dataclasses.replace(inv.nodes[1], control={"backend": "kubernetes"})
    with pytest.raises(control.ControlError) as e:
        control.for_node(inv, node)
    msg = str(e.value)
    assert msg == (
        "redis-2: unknown control backend 'kubernetes' (known: docker, lab, local, railway, ssh)"
    )


@pytest.mark.parametrize("name", control.names())
def test_the_inventory_accepts_every_registered_name(tmp_path, name):
    d = lab_inventory_dict(tmp_path)
    d["control"] = {"backend": name}
    d["nodes"][1]["control"] = {"backend": name}
    inv = inventory.from_dict(d, tmp_path / "inventory.yaml")
    assert control.backend_name(inv, inv.nodes[1]) == name


def test_the_inventory_refuses_any_other_name_inventory_wide_and_per_node(tmp_path):
    d = lab_inventory_dict(tmp_path)
    d["control"] = {"backend": "kubernetes"}
    d["nodes"][1]["control"] = {"backend": "systemd"}
    with pytest.raises(InventoryError) as e:
        inventory.from_dict(d, tmp_path / "inventory.yaml")
    msg = str(e.value)
    known = ", ".join(control.names())
    assert f"control.backend: must be one of {known}, not 'kubernetes'" in msg
    assert f"nodes[1].control.backend: must be one of {known}, not 'systemd'" in msg


def test_lab_backend_refuses_non_lab_inventory(tmp_path):
    inv = _inv(tmp_path, lab=False)
    with pytest.raises(LabError, match="not marked 'lab: true'"):
        control.for_node(inv, inv.nodes[0])


@pytest.mark.parametrize(
    ("top", "own", "expected"),
    [
        ({}, {}, False),
        ({"safestart": True}, {}, True),
        ({"safestart": True}, {"safestart": False}, False),
        ({"safestart": False}, {"safestart": True}, True),
        ({}, {"safestart": True}, True),
    ],
)
def test_starts_safely_node_setting_wins_over_the_inventory(tmp_path, top, own, expected):
    inv = _inv(tmp_path, control={"backend": "lab", **top})
    node = dataclasses.replace(inv.nodes[0], control=own)
    assert control.starts_safely(inv, node) is expected
