"""The guard against redis/redis#11241, decided from Sentinel log lines (pure). The real effect
is reproduced in the Docker lab (tests/test_docker_lab.py), where the guard refuses for real."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from redis_ha import inventory, unresolved
from tests.conftest import ROOT

INV = inventory.load(ROOT / "inventories" / "example-production.yaml")
NOW = datetime(2026, 12, 3, 11, 42, 30).astimezone().timestamp()


def line(sec: int, msg: str) -> str:
    return f"1:X 03 Dec 2026 11:42:{sec:02d}.123 # {msg}"


FAIL = "Failed to resolve hostname 'redis-1.railway.internal'"


def test_recent_failures_name_the_node_and_every_sentinel_that_logged_them() -> None:
    logs = {
        "sentinel-1": [line(10, "+sdown master mymaster redis-1.railway.internal 6379"),
                       line(28, FAIL), line(29, FAIL)],
        "sentinel-2": [line(27, FAIL)],
        "sentinel-3": [line(29, "+tilt #tilt mode entered")],
    }  # fmt: skip
    found = unresolved.failing(logs, NOW)
    assert set(found) == {"redis-1.railway.internal"}
    assert sorted(found["redis-1.railway.internal"]) == ["sentinel-1", "sentinel-2"]
    why = unresolved.refusal(INV, found, NOW)
    assert why is not None and "\n" not in why
    assert why.startswith("sentinel-1, sentinel-2 cannot resolve redis-1 ('redis-1.railway")
    assert "1 s ago" in why and "redis/redis#11241" in why
    assert "failover-automatic.md" in why and "A down node's name no longer resolves" in why


def test_old_failures_and_other_lines_do_not_refuse() -> None:
    logs = {
        "sentinel-1": [line(0, FAIL)],  # 30 s old: inside the default window
        "sentinel-2": ["not a log line " + FAIL, line(29, "+switch-master mymaster a 1 b 2")],
    }
    assert set(unresolved.failing(logs, NOW)) == {"redis-1.railway.internal"}
    assert unresolved.failing(logs, NOW, window_s=20) == {}
    assert unresolved.refusal(INV, {}, NOW) is None
    assert unresolved.failing({"sentinel-1": [line(29, "Failed to resolve nothing")]}, NOW) == {}


def test_a_name_outside_the_inventory_is_named_as_sentinel_logged_it() -> None:
    found = unresolved.failing({"sentinel-3": [line(30, "Failed to resolve hostname 'x.y'")]}, NOW)
    why = unresolved.refusal(INV, found, NOW)
    assert why is not None and why.startswith("sentinel-3 cannot resolve x.y ('x.y', 0 s ago)")


def test_a_rebuild_of_the_unresolvable_node_itself_is_let_through() -> None:
    logs = {"sentinel-1": [line(29, FAIL)], "sentinel-2": []}
    ok, why = unresolved.verdict(INV, logs, NOW, allow="redis-1", missing=["sentinel-3"])
    assert ok and why == (
        "every Sentinel resolves every node's name but redis-1, which this run brings back "
        "(logs of sentinel-3 not readable: not checked there)"
    )
    ok, why = unresolved.verdict(INV, logs, NOW, allow="redis-2")
    assert not ok and why.startswith("sentinel-1 cannot resolve redis-1")
    assert unresolved.verdict(INV, {"sentinel-1": []}, NOW) == (
        True, "every Sentinel resolves every node's name"
    )  # fmt: skip


def test_the_section_the_guard_names_exists() -> None:
    text = (ROOT / "runbooks" / "failover-automatic.md").read_text()
    assert "## A down node's name no longer resolves (redis/redis#11241)" in text


def test_the_guard_is_in_the_preflight_of_failover_and_rebuild() -> None:
    import yaml

    from redis_ha.actions import registry

    registry.load_all()
    assert "sentinel.resolves_nodes" in registry.CHECKS
    for name in ("failover-manual", "replica-rebuild"):
        book = yaml.safe_load(Path(ROOT / "playbooks" / f"{name}.yaml").read_text())
        pre = next(s for s in book["steps"] if s["id"] == "preflight")
        names = [g if isinstance(g, str) else g["check"] for g in pre["guard"]]
        assert names[0] == "sentinel.resolves_nodes", name
