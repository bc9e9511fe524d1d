"""Free loopback ports and throwaway lab inventories, for tests, benchmarks and drills.

Each test run gets its own ports and its own state folder, so two runs never collide.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml


def free_ports(n: int) -> list[int]:
    """`n` distinct ports the kernel says are free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# A lab's cluster settings (the Docker lab's too); timings are production's, the process lab's
# throwaway inventories override them with fast ones.
SETTINGS: dict[str, Any] = {
    "quorum": 2,
    "down_after_ms": 3000,
    "failover_timeout_ms": 10000,
    "parallel_syncs": 1,
    "min_replicas_to_write": 1,
    "min_replicas_max_lag": 10,
    "persistence": False,
    "repl_diskless_sync": True,
    "repl_diskless_sync_delay": 0,
}


FAST_INFO_PERIOD_MS = 1000


# Test labs' down-after. Not 1000: at 1000 ms Sentinel sometimes marked the primary it had just
# promoted down ~1 s after +switch-master and failed over a second time (seen 1 run in 4-12 of
# a crash test; the restart-empty drill flaked ~1 in 14 the same way). The likely cause: its
# promotion ends with CLIENT KILL TYPE normal on the promoted replica (sentinelSendSlaveOf in
# sentinel.c), which drops the other Sentinels' links to it, and on a loaded machine their
# reconnect and next PING reply came late. 2000 ms, as the crash-and-recover traffic test has
# used since it flaked at 1000.
FAST_DOWN_AFTER_MS = 2000


def lab_inventory_dict(
    state_dir: Path,
    *,
    down_after_ms: int = FAST_DOWN_AFTER_MS,
    failover_timeout_ms: int = 4000,
    single: bool = True,
    **settings: Any,
) -> dict[str, Any]:
    """A lab inventory on free ports. Timings default to fast ones: tests about timing override."""
    ports = free_ports(7)
    inv: dict[str, Any] = {
        "name": "testlab",
        "lab": True,
        "lab_dir": str(state_dir / "lab"),
        "master_name": "mymaster",
        "auth": {"password_file": str(state_dir / "password")},
        "nodes": [
            {"name": f"redis-{i + 1}", "host": "127.0.0.1", "port": ports[i]} for i in range(3)
        ],
        "sentinels": [
            {"name": f"sentinel-{i + 1}", "host": "127.0.0.1", "port": ports[3 + i]}
            for i in range(3)
        ],
        "settings": {
            **SETTINGS,
            "down_after_ms": down_after_ms,
            "failover_timeout_ms": failover_timeout_ms,
            **settings,
        },
        "control": {"backend": "lab"},
        "app": {"config_backend": "envfile", "env_file": str(state_dir / "lab" / "app.env")},
    }
    if single:
        inv["single"] = {"name": "legacy", "host": "127.0.0.1", "port": ports[6]}
    if down_after_ms < SETTINGS["down_after_ms"]:
        # Fast timings all round: Sentinels re-read replica INFO every second, not every 10 s,
        # so a steer (replica-priority) is seen in ~1 s. Labs with production timings keep 10 s.
        inv["lab_sentinel_info_period_ms"] = FAST_INFO_PERIOD_MS
    return inv


def write_lab_inventory(state_dir: Path, **kw: Any) -> Path:
    """Write a throwaway lab inventory into `state_dir` and return its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "inventory.yaml"
    path.write_text(yaml.safe_dump(lab_inventory_dict(state_dir, **kw), sort_keys=False))
    return path
