"""A node container's command: redis-server as the last `start` asked, through safestart or not.

A container's command is fixed when it is created, but a node is started now as a replica of one
node, now with replica-priority 0. The docker backend writes what this start needs into
/etc/redis-ha/start.json of the stopped container; this reads it and exec()s redis-server (the
container's PID 1 stays redis-server, so `docker stop` signals Redis itself).

    python -m redis_ha.dockerlab.entry NODE -- redis-server /etc/redis-ha/redis.conf
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CONF_DIR = Path("/etc/redis-ha")
START = CONF_DIR / "start.json"
INVENTORY = CONF_DIR / "inventory.yaml"


def argv_for(node: str, server: list[str], start: dict[str, Any]) -> list[str]:
    """The command to exec for `start` ({args: [redis-server words], safe: bool})."""
    argv = [*server, *(str(w) for w in start.get("args") or [])]
    if start.get("safe"):
        argv = [sys.executable, "-m", "redis_ha.safestart", "--inventory", str(INVENTORY),
                "--node", node, "--", *argv]  # fmt: skip
    return argv


def main(args: list[str]) -> None:
    if len(args) < 3 or args[1] != "--":
        sys.exit("usage: python -m redis_ha.dockerlab.entry NODE -- redis-server CONF")
    try:
        start = json.loads(START.read_text())
    except (OSError, ValueError):
        start = {}
    argv = argv_for(args[0], args[2:], start)
    os.execv(argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}", argv)


if __name__ == "__main__":
    main(sys.argv[1:])
