"""Inventory validation: every problem named by its YAML path, one message, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis_ha import inventory
from redis_ha.errors import InventoryError
from redis_ha.lab.ports import lab_inventory_dict

from .conftest import ROOT, run_invoke


def write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "inv.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def valid(tmp_path: Path) -> dict:
    return lab_inventory_dict(tmp_path)


def problems_of(tmp_path: Path, data: object) -> str:
    with pytest.raises(InventoryError) as e:
        inventory.load(write(tmp_path, data))
    return str(e.value)


def test_repository_inventories_are_valid() -> None:
    lab = inventory.load(ROOT / "inventories" / "lab.yaml")
    assert lab.lab is True
    assert [n.name for n in lab.nodes] == ["redis-1", "redis-2", "redis-3"]
    assert lab.settings.quorum == 2 and lab.settings.down_after_ms == 3000
    assert lab.settings.failover_timeout_ms == 10000
    assert lab.settings.min_replicas_to_write == 1 and lab.settings.persistence is False
    prod = inventory.load(ROOT / "inventories" / "example-production.yaml")
    assert prod.lab is False


def test_missing_key(tmp_path: Path) -> None:
    d = valid(tmp_path)
    del d["master_name"]
    assert "master_name: missing required field" in problems_of(tmp_path, d)


def test_wrong_type(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["settings"]["quorum"] = "two"
    d["lab"] = "yes"
    msg = problems_of(tmp_path, d)
    assert "settings.quorum: must be an integer, got a string 'two'" in msg
    assert "lab: must be true or false" in msg


def test_duplicate_node_name(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["nodes"][2]["name"] = "redis-1"
    assert "nodes[2].name: duplicate name 'redis-1' (also nodes[0])" in problems_of(tmp_path, d)


def test_bad_port(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["sentinels"][1]["port"] = 70000
    d["nodes"][0]["port"] = "6379"
    msg = problems_of(tmp_path, d)
    assert "sentinels[1].port: 70000 is not a valid port (1-65535)" in msg
    assert "nodes[0].port: must be an integer" in msg


def test_unknown_field(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["nodes"][1]["prot"] = 1
    d["colour"] = "blue"
    msg = problems_of(tmp_path, d)
    assert "nodes[1].prot: unknown field" in msg
    assert "colour: unknown field" in msg


@pytest.mark.parametrize("period", [50, 90000])
def test_sentinel_info_period_out_of_range(tmp_path: Path, period: int) -> None:
    d = valid(tmp_path)
    d["lab_sentinel_info_period_ms"] = period
    assert "lab_sentinel_info_period_ms: must be between 100" in problems_of(tmp_path, d)


def test_fast_labs_shorten_the_sentinel_info_period_and_production_timings_do_not(
    tmp_path: Path,
) -> None:
    assert inventory.load(write(tmp_path, valid(tmp_path))).lab_sentinel_info_period_ms == 1000
    slow = lab_inventory_dict(tmp_path, down_after_ms=3000)
    assert inventory.load(write(tmp_path, slow)).lab_sentinel_info_period_ms is None


def test_all_problems_reported_together(tmp_path: Path) -> None:
    d = valid(tmp_path)
    del d["master_name"]
    d["nodes"][0]["port"] = 0
    d["settings"]["bogus"] = 1
    msg = problems_of(tmp_path, d)
    assert "(3 problems)" in msg


def test_password_in_yaml_refused(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["auth"] = {"password": "hunter2"}
    msg = problems_of(tmp_path, d)
    assert "auth.password: passwords are never written in the inventory" in msg


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    msg = problems_of(tmp_path, "lab: true\nnodes: [\n  {name: redis-1\n")
    assert "inv.yaml:" in msg and "invalid YAML" in msg


def test_quorum_larger_than_sentinels(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["settings"]["quorum"] = 4
    assert "quorum 4 exceeds the 3 Sentinels" in problems_of(tmp_path, d)


def test_password_from_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = valid(tmp_path)
    d["auth"] = {"password_env": "TEST_HA_PW", "password_file": "pw.txt"}
    (tmp_path / "pw.txt").write_text("from-file\n")
    inv = inventory.load(write(tmp_path, d))
    assert inv.password() == "from-file"
    monkeypatch.setenv("TEST_HA_PW", "from-env")
    assert inv.password() == "from-env"
    assert inv.secrets() == ["from-env"]


def test_missing_password_is_a_clear_error(tmp_path: Path) -> None:
    d = valid(tmp_path)
    d["auth"] = {"password_env": "TEST_HA_UNSET_PW"}
    inv = inventory.load(write(tmp_path, d))
    with pytest.raises(InventoryError, match=r"\$TEST_HA_UNSET_PW is not set"):
        inv.password()


def test_unknown_node_lists_known_ones(tmp_path: Path) -> None:
    inv = inventory.load(write(tmp_path, valid(tmp_path)))
    with pytest.raises(InventoryError, match="unknown node 'redis-9'.*redis-1, redis-2, redis-3"):
        inv.node("redis-9")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("nodes"),
        lambda d: d["settings"].update(quorum=True),
        lambda d: d["nodes"].append(dict(d["nodes"][0])),
        lambda d: d["nodes"][0].update(port=-1),
        lambda d: d.update(extra=1),
    ],
    ids=["missing-key", "wrong-type", "duplicate-name", "bad-port", "unknown-field"],
)
def test_task_gives_one_clear_message_and_nonzero_exit(tmp_path: Path, mutate) -> None:
    d = valid(tmp_path)
    mutate(d)
    r = run_invoke("status", inventory=write(tmp_path, d), timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    assert "invalid inventory" in r.stderr


def test_missing_inventory_file(tmp_path: Path) -> None:
    r = run_invoke("status", inventory=tmp_path / "nope.yaml", timeout=60)
    assert r.returncode != 0 and "inventory file not found" in r.stderr
    assert "Traceback" not in r.stderr
