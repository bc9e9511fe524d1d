"""Run app traffic against a cluster while a command runs; print the traffic report as JSON.

Runs wherever the cluster's names resolve: on this host for the process lab, inside the Docker
lab's ops container for that one (the tests copy it there), so both are measured the same way.

    python traffic_during.py INVENTORY RATE CLIENT -- COMMAND...
    python traffic_during.py INVENTORY RATE CLIENT --kill CONTAINER   (crash the primary)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from redis_ha import inventory
from redis_ha.lab.traffic import Traffic


def main(args: list[str]) -> None:
    path, rate, client, mode, *rest = args
    inv = inventory.load(path)
    t = Traffic(inv, rate=float(rate), client=client, keys=2000, prefix="acceptance:")
    t.start()
    out, code = "", 0
    try:
        time.sleep(2.0)
        if mode == "--kill":
            import docker

            docker.from_env().containers.get(rest[0]).kill()
            time.sleep(12.0)  # down-after 3 s, the election, clients rediscover
        else:
            p = subprocess.run(rest, capture_output=True, text=True, timeout=120)
            out, code = p.stdout + p.stderr, p.returncode
        time.sleep(2.0)
    finally:
        rep = t.stop()
    print(json.dumps({"rc": code, "out": out[-20000:], "report": rep.to_dict()}))


if __name__ == "__main__":
    main(sys.argv[1:])
