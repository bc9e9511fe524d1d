"""lab.partition state handling that needs no process running."""

from __future__ import annotations

from pathlib import Path

from redis_ha import inventory
from redis_ha.lab import partition
from redis_ha.lab.cluster import Lab


def test_heal_without_a_running_proxy_clears_the_isolation(tmp_path: Path) -> None:
    """The next `lab.up` starts the proxy from isolated.json: a heal must not leave it behind."""
    lab = Lab(inventory.load(partition.write_partitionable_inventory(tmp_path)))
    d = lab.proc_dir(partition.PROXY)
    d.mkdir(parents=True)
    partition._write_state(d, ["redis-1"])
    assert partition.proxy_pid(lab) is None
    assert partition.heal(lab) == ["redis-1"]
    assert partition.isolated(lab) == []
