"""Real network partitions in the lab, without root: cut a node off through the partition proxies.

A lab is partitionable when its nodes have an `announce` address (see `lab/proxy.py` for how the
proxies cut both directions). `Lab.up` starts the proxy process before the nodes
(`Lab.ensure_proxy`); its pid file lives under the lab folder, so `lab.down` stops it with
everything else. This module only tells the running proxy which nodes to cut off.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from redis_ha.cli.names import command
from redis_ha.errors import LabError
from redis_ha.lab.cluster import PROXY, Lab, partitionable
from redis_ha.lab.ports import free_ports, lab_inventory_dict


def _state_dir(lab: Lab) -> Path:
    return lab.proc_dir(PROXY)


def require_partitionable(lab: Lab) -> None:
    if not partitionable(lab.inv):
        raise LabError(
            f"{lab.inv.path}: this lab has no partition proxies (its nodes have no 'announce' "
            "address); create one with redis_ha.lab.partition.write_partitionable_inventory"
        )


def proxy_pid(lab: Lab) -> int | None:
    return lab.pid(PROXY)


def _write_state(d: Path, isolated: list[str]) -> int:
    try:
        gen = int(json.loads((d / "isolated.json").read_text()).get("gen", 0)) + 1
    except (OSError, ValueError):
        gen = 1
    tmp = d / "isolated.tmp"
    tmp.write_text(json.dumps({"gen": gen, "isolated": sorted(isolated)}))
    tmp.replace(d / "isolated.json")
    return gen


def isolated(lab: Lab) -> list[str]:
    """Nodes currently cut off (empty when healed or not partitionable)."""
    try:
        return list(json.loads((_state_dir(lab) / "isolated.json").read_text())["isolated"])
    except (OSError, ValueError, KeyError):
        return []


def _apply(lab: Lab, names: list[str], timeout: float = 5.0) -> None:
    require_partitionable(lab)
    if proxy_pid(lab) is None:
        raise LabError(f"the partition proxy is not running: run `{command('lab.up')}` first")
    d = _state_dir(lab)
    gen = _write_state(d, names)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int((d / "applied").read_text()) >= gen:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise LabError(f"the partition proxy did not apply the change within {timeout:.0f} s")


def isolate(lab: Lab, node: str) -> list[str]:
    """Cut `node` off from every other node and Sentinel, both ways; its own port stays open."""
    lab.inv.node(node)  # a clear error for an unknown name
    names = sorted(set(isolated(lab)) | {node})
    _apply(lab, names)
    return names


def heal(lab: Lab) -> list[str]:
    """Restore every cut link; returns the nodes that were isolated."""
    was = isolated(lab)
    if partitionable(lab.inv) and proxy_pid(lab) is not None:
        _apply(lab, [])
    elif was:
        _write_state(_state_dir(lab), [])  # a proxy started later must not cut them again
    return was


def partitionable_inventory_dict(state_dir: Path, **kw: Any) -> dict[str, Any]:
    """A lab inventory whose nodes announce a proxy port each (see `lab/proxy.py`)."""
    inv = lab_inventory_dict(state_dir, **kw)
    inv["name"] = "splitlab"
    used = {e["port"] for e in (*inv["nodes"], *inv["sentinels"])}
    ports = [p for p in free_ports(len(used) + len(inv["nodes"])) if p not in used][
        : len(inv["nodes"])
    ]
    for node, port in zip(inv["nodes"], ports, strict=True):
        node["announce"] = f"127.0.0.1:{port}"
    return inv


def write_partitionable_inventory(state_dir: Path, **kw: Any) -> Path:
    """Write a throwaway partitionable lab inventory into `state_dir` and return its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "inventory.yaml"
    path.write_text(yaml.safe_dump(partitionable_inventory_dict(state_dir, **kw), sort_keys=False))
    return path
