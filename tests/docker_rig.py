"""Docker for the tests: an engine (started if none answers), the lab image, and a rig of three
bare node containers on a network the test creates, for the control contract suite."""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_ha import control, inventory, render
from redis_ha.dockerlab import engine, image
from redis_ha.dockerlab import lab as dlab
from redis_ha.dockerlab.entry import CONF_DIR
from redis_ha.errors import HAError

_SESSION: dict[str, Any] = {}


def _stop_engine(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)


def docker_or_skip() -> tuple[Any, str]:
    """The engine client and the lab image, once per session; a loud skip where none can run."""
    if "skip" in _SESSION:
        pytest.skip(_SESSION["skip"])
    if "docker" not in _SESSION:
        try:
            pid = engine.start_engine()
            if pid is not None:  # ours: stopped by its PID when the session ends
                atexit.register(_stop_engine, pid)
            docker = engine.client()
            _SESSION["image"] = image.ensure(docker)
            _SESSION["docker"] = docker
        except HAError as e:
            _SESSION["skip"] = f"DOCKER TESTS SKIPPED: no Docker engine can run here: {e}"
            pytest.skip(_SESSION["skip"])
    return _SESSION["docker"], _SESSION["image"]


@contextmanager
def docker_rig(tmp_path: Path) -> Iterator[Any]:
    """Three stopped node containers at fixed addresses on a network of the test's own; the
    inventory gives those addresses (this host reaches them through the network's bridge)."""
    from tests.test_control_contract import Rig

    docker, tag = docker_or_skip()
    lab_id = "t" + secrets.token_hex(3)
    try:
        net, subnet = dlab.create_network(docker, lab_id)
        prefix = subnet.rsplit(".", 1)[0]
        names = ("redis-1", "redis-2", "redis-3")
        d = {
            "name": "dockerrig",
            "lab": True,
            "master_name": "mymaster",
            "auth": {"password_file": "password"},
            "nodes": [
                {
                    "name": n,
                    "host": f"{prefix}.{11 + i}",
                    "port": dlab.NODE_PORT,
                    "control": {"container": f"rh-{lab_id}-{n}"},
                }
                for i, n in enumerate(names)
            ],  # fmt: skip
            # Listed, never started (as in the lab's rig): nothing answers at these addresses.
            "sentinels": [
                {"name": f"sentinel-{i}", "host": f"{prefix}.{20 + i}", "port": dlab.SENTINEL_PORT}
                for i in (1, 2, 3)
            ],
            "settings": {**dlab.SETTINGS, "min_replicas_to_write": 0},
            "control": {"backend": "docker"},
        }
        path = tmp_path / "inventory.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        render.write_private(tmp_path / "password", secrets.token_urlsafe(12) + "\n")
        inv = inventory.load(path)
        ctl = control.for_node(inv, inv.nodes[0])
        for n in inv.nodes:
            conf = render.redis_conf(
                inv, n, data_dir="/data", replicaof=None, password=inv.password(), log_stdout=True
            )
            c = dlab.start_container(
                net.name, image_tag=tag, name=n.control["container"], alias=n.name, ip=n.host,
                command=dlab.node_command(n.name), lab_id=lab_id,
                files={f"{CONF_DIR}/redis.conf": conf.encode(),
                       f"{CONF_DIR}/inventory.yaml": path.read_bytes(),
                       f"{CONF_DIR}/password": (tmp_path / "password").read_bytes()},
            )  # fmt: skip
            # Stopped once it answers: before the entry exec()s redis-server, PID 1 is Python,
            # which ignores SIGTERM, and `docker stop` would wait out its timeout.
            ctl._wait_answers(c.get_wrapped_container(), n, 15)
            ctl.stop(n)
        yield Rig(inv, ctl)
    finally:
        dlab.remove(docker, lab_id)
