"""What a deployed service runs (`config.render --target`): its config, then the server.

The rendered config holds no secret: the password comes from the environment at start (a
Railway variable, a compose `environment:` entry, a root-only systemd EnvironmentFile) and is
written, with the rendered lines, into the config the process runs from (mode 0600, in its data
folder). A node then starts through redis_ha.safestart (an empty node never comes back as
primary), with whatever the docker backend asked of this start (its start.json) or
`$REDIS_HA_ARGS` / `$REDIS_HA_BOOTSTRAP` (ssh, Railway). A Sentinel keeps the file it rewrote
itself if one is there (it records the current primary and its peers); only a first start writes
it from the rendered one.

    python -m redis_ha.launch --inventory /etc/redis-ha/inventory.yaml --service redis-1 \\
        --template /etc/redis-ha/redis.conf --conf /data/redis.conf

It exec()s, so the PID the supervisor started stays redis-server's (or Sentinel's).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from redis_ha import inventory as invmod
from redis_ha import render, safestart
from redis_ha.dockerlab.entry import START
from redis_ha.errors import HAError, InventoryError
from redis_ha.inventory import Endpoint, Inventory

PREFIX = "redis-ha launch"


def config_text(inv: Inventory, ep: Endpoint, template: str) -> str:
    """The rendered config with the password lines for this kind of service appended."""
    pw = inv.password()
    nodes = ep in inv.nodes
    lines = render.redis_auth(pw) if nodes else render.sentinel_auth(inv.master_name, pw)
    return template.rstrip("\n") + "\n" + "".join(f"{ln}\n" for ln in lines)


def start_options() -> dict[str, Any]:
    """What the docker backend asked of this start (its start.json), else a plain safe start."""
    try:
        start = json.loads(START.read_text())
    except (OSError, ValueError):
        start = {}
    return start if isinstance(start, dict) else {}


def argv(inv: Inventory, ep: Endpoint, conf: Path) -> list[str]:
    """The command to exec: Sentinel as is, a node through safestart unless told otherwise."""
    if ep in inv.sentinels:
        return [_which("redis-sentinel"), str(conf)]
    start = start_options()
    server = [_which("redis-server"), str(conf), *(str(w) for w in start.get("args") or [])]
    if start.get("safe", True):
        return safestart.wrap_argv(inv, ep, server)
    return server


def _which(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise HAError(f"{name}: not found on PATH", code=127)
    return found


# What Redis 7.0 writes (with announce-hostnames no) for a monitored primary whose name did not
# resolve when the Sentinel started (measured): an empty host; the next start refuses the file.
EMPTY_HOST_RE = re.compile(r"^sentinel monitor \S+ {2,}\d+", re.MULTILINE)


def prepare(inv: Inventory, ep: Endpoint, template: Path, conf: Path) -> str:
    """Write the config this start runs from; returns what was done, for the one log line."""
    note = ""
    if ep in inv.sentinels and conf.exists():
        if not EMPTY_HOST_RE.search(conf.read_text(errors="replace")):
            return f"{conf} kept (Sentinel's own rewritten state)"
        note = " (the kept one monitored an empty host: redis/redis#11241)"
    try:
        text = template.read_text()
    except OSError as e:
        raise HAError(f"cannot read the rendered config {template}: {e.strerror}") from None
    render.write_private(conf, config_text(inv, ep, text))
    return f"{conf} written from {template}{note}"


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m redis_ha.launch", description=__doc__)
    p.add_argument("--inventory", required=True, help="the deployment's inventory.yaml")
    p.add_argument("--service", required=True, help="this node's or Sentinel's name")
    p.add_argument("--template", required=True, help="the rendered redis.conf / sentinel.conf")
    p.add_argument("--conf", required=True, help="the config to write and run from (mode 0600)")
    ns = p.parse_args(sys.argv[1:] if args is None else args)
    try:
        inv = invmod.load(ns.inventory)
        ep = inv.find(ns.service)
        if ep is None:
            raise InventoryError(f"{ns.service}: no node or Sentinel of that name in {inv.path}")
        done = prepare(inv, ep, Path(ns.template), Path(ns.conf))
        cmd = argv(inv, ep, Path(ns.conf))
    except HAError as e:
        print(f"{PREFIX}: error: {e}", file=sys.stderr)
        return e.code if e.code != 1 else 2
    print(f"{PREFIX}: {ep.name}: {done}", file=sys.stderr, flush=True)
    # Sentinel rewrites its file (password included) as 0644 & ~umask: keep it, and any RDB,
    # readable by the service's user only.
    os.umask(0o077)
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
