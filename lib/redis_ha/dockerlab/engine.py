"""A Docker engine to talk to: the one DOCKER_HOST or the default socket names, else one we start.

No registry is reachable and the machine may forbid iptables, so the engine we start runs with
`--iptables=false --bridge=none` and a data root of its own; containers live only on the
user-defined networks the lab creates (the host reaches them through that network's bridge).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from redis_ha.errors import HAError

DATA_ROOT = Path("/var/lib/redis-ha-docker")
EXEC_ROOT = Path("/run/redis-ha-docker")
PIDFILE = Path("/run/redis-ha-docker.pid")
LOG = Path("/var/log/redis-ha-dockerd.log")
INSTALL_HINT = "install it with: sudo apt-get install -y docker.io"


class EngineError(HAError):
    """No Docker engine answers (and none could be started)."""

    code = 3


def client(timeout: float = 30.0) -> Any:
    """A docker-py client whose engine answered a ping, or one EngineError line."""
    try:
        import docker
    except ImportError:
        raise EngineError("the docker Python package is missing: pip install docker") from None
    try:
        c = docker.from_env(timeout=int(timeout))
        c.ping()
        return c
    except Exception as e:  # docker-py wraps connection errors in several classes
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise EngineError(f"no Docker engine answers at {where}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def answers() -> bool:
    """True when a Docker engine answers now."""
    try:
        client(timeout=5)
        return True
    except EngineError:
        return False


def start_engine(timeout: float = 30.0) -> int | None:
    """Start dockerd unless an engine answers; returns the PID we started (None: one ran).

    Raises EngineError when there is no dockerd, we are not root, or it does not come up.
    """
    if answers():
        return None
    if os.environ.get("DOCKER_HOST"):
        raise EngineError(f"no Docker engine answers at {os.environ['DOCKER_HOST']}")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineError(f"no Docker engine answers and dockerd is not installed; {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise EngineError("no Docker engine answers, and starting dockerd needs root")
    EXEC_ROOT.mkdir(parents=True, exist_ok=True)
    argv = [
        dockerd,
        "--iptables=false",
        "--bridge=none",
        f"--data-root={DATA_ROOT}",
        f"--exec-root={EXEC_ROOT}",
        f"--pidfile={PIDFILE}",
    ]
    with open(LOG, "ab") as out:
        p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise EngineError(f"dockerd exited at start (code {p.returncode}); see {LOG}")
        if answers():
            return p.pid
        time.sleep(0.3)
    p.kill()
    raise EngineError(f"dockerd did not answer within {timeout:.0f} s; see {LOG}")
