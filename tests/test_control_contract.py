"""The contract every control backend passes, against real redis-server processes.

Each implemented backend brings a rig (`RIGS`): an inventory whose nodes it controls and a way to
clean up. The tests only speak the backend's interface and the Redis protocol (no PIDs, no lab
files), so the same tests hold for processes over ssh, containers or Railway services. A
placeholder backend skips them with its reason and is checked to refuse every operation instead.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from redis_ha import control, inventory
from redis_ha.conn import client
from redis_ha.control import Control, ControlError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import lab_inventory_dict, write_lab_inventory
from redis_ha.render import redis_conf, write_private

from . import railway_standin
from .sshd_rig import lab_commands, sshd


@dataclass
class Rig:
    """Three stopped nodes of `inv`, all controlled by `ctl`."""

    inv: Inventory
    ctl: Control

    @property
    def a(self) -> Endpoint:
        return self.inv.nodes[0]

    @property
    def b(self) -> Endpoint:
        return self.inv.nodes[1]

    @property
    def c(self) -> Endpoint:
        return self.inv.nodes[2]


@contextmanager
def lab_rig(tmp_path: Path) -> Iterator[Rig]:
    """The lab's processes: nodes on free loopback ports, stopped by PID afterwards."""
    # No Sentinels and no replicas to begin with: a lone primary must take writes.
    path = write_lab_inventory(tmp_path, single=False, min_replicas_to_write=0)
    lab = Lab(inventory.load(path))
    lab.ensure_password()
    try:
        yield Rig(lab.inv, control.for_node(lab.inv, lab.inv.nodes[0]))
    finally:
        lab.down()


@contextmanager
def ssh_rig(tmp_path: Path) -> Iterator[Rig]:
    """The same processes driven through a real sshd on 127.0.0.1 (tests/sshd_rig.py)."""
    with sshd(tmp_path) as server:
        d = lab_inventory_dict(tmp_path, single=False, min_replicas_to_write=0)
        path = tmp_path / "inventory.yaml"
        d["control"] = {
            "backend": "ssh",
            "ssh": server.ssh_options(),
            "commands": lab_commands(Path(d["lab_dir"]), path),
        }
        path.write_text(yaml.safe_dump(d))
        inv = inventory.load(path)
        lab = write_node_configs(inv)
        try:
            yield Rig(inv, control.for_node(inv, inv.nodes[0]))
        finally:
            lab.down()


def write_node_configs(inv: Inventory) -> Lab:
    """The nodes' config files where a remote start command finds them (the lab's folders)."""
    lab = Lab(inv)
    password = lab.ensure_password()
    for n in inv.nodes:
        folder = lab.proc_dir(n.name)
        write_private(
            lab.conf(n.name), redis_conf(inv, n, data_dir=folder, replicaof=None, password=password)
        )
    return lab


@contextmanager
def railway_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """Services of a stand-in Railway CLI on PATH that runs them as local processes."""
    d = lab_inventory_dict(tmp_path, single=False, min_replicas_to_write=0)
    d["control"] = {"backend": "railway", "environment": "staging"}
    for n in d["nodes"]:
        n["control"] = {"service": f"svc-{n['name']}"}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(d))
    inv = inventory.load(path)
    lab = write_node_configs(inv)
    services = {
        f"svc-{n.name}": {
            "dir": str(lab.proc_dir(n.name)),
            "inventory": str(path),
            "node": n.name,
            "environment": "staging",
            "log": str(lab.log(n.name)),
        }
        for n in inv.nodes
    }
    state = railway_standin.install(tmp_path / "bin", services)
    monkeypatch.setenv("PATH", f"{state}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(railway_standin.ENV_DIR, str(state))
    monkeypatch.setenv("RAILWAY_TOKEN", "project-token-123")
    try:
        yield Rig(inv, control.for_node(inv, inv.nodes[0]))
    finally:
        lab.down()


# Issue 12 adds a rig per backend: docker (a network the test creates) comes with it.
RIGS: dict[str, Callable[..., Any]] = {"lab": lab_rig, "ssh": ssh_rig, "railway": railway_rig}
PLACEHOLDERS = [n for n in control.backends() if not control.backend_class(n).implemented]


@pytest.fixture(params=control.backends())
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    name = request.param
    if name in PLACEHOLDERS:
        pytest.skip(f"control backend {name!r}: not implemented: issue 12")
    if name not in RIGS:
        pytest.fail(f"control backend {name!r} is implemented but has no contract rig in RIGS")
    rig = RIGS[name]
    extra = {"monkeypatch": request.getfixturevalue("monkeypatch")} if name == "railway" else {}
    with rig(tmp_path, **extra) as r:
        yield r


def _c(rig: Rig, ep: Endpoint) -> redis.Redis:
    return client(rig.inv, ep, timeout=2.0)


def _refuses_connections(ep: Endpoint) -> bool:
    try:
        with socket.create_connection((ep.host, ep.port), timeout=0.5):
            return False
    except OSError:
        return True


def _run_id(rig: Rig, ep: Endpoint) -> str:
    return str(_c(rig, ep).info("server")["run_id"])


class FirstAnswer(threading.Thread):
    """Polls a node from before it starts and keeps the first answer it ever gives."""

    def __init__(self, rig: Rig, ep: Endpoint, ask: Callable[[redis.Redis], Any]) -> None:
        super().__init__(daemon=True)
        self.rig, self.ep, self.ask = rig, ep, ask
        self.answer: Any = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while not self.done.is_set() and time.monotonic() < deadline:
            c = client(self.rig.inv, self.ep, timeout=0.5)
            try:
                self.answer = self.ask(c)
                return
            except redis.RedisError:
                time.sleep(0.001)
            finally:
                c.close()

    def result(self) -> Any:
        self.join(60)
        self.done.set()
        assert self.answer is not None, f"{self.ep.name} never answered"
        return self.answer


def _role_and_priority(c: redis.Redis) -> tuple[list[Any], str]:
    p = c.pipeline(transaction=False)
    p.execute_command("ROLE")
    p.config_get("replica-priority")
    role, cfg = p.execute()
    return role, cfg["replica-priority"]


# --- the contract -------------------------------------------------------------------------------
@pytest.mark.lab
def test_is_running_follows_start_and_stop_waits_until_gone(rig: Rig) -> None:
    ctl, a = rig.ctl, rig.a
    assert not ctl.is_running(a)
    ctl.start(a)
    assert ctl.is_running(a)
    assert _c(rig, a).ping()  # start returns once the port answers
    ctl.stop(a)
    # stop returns once the process is gone, not once it was asked to go
    assert not ctl.is_running(a)
    assert _refuses_connections(a)
    ctl.stop(a)  # stopping a stopped node leaves it as it is
    assert not ctl.is_running(a)


@pytest.mark.lab
def test_start_refuses_a_running_node_and_leaves_it_serving(rig: Rig) -> None:
    ctl, a = rig.ctl, rig.a
    ctl.start(a)
    before = _run_id(rig, a)
    with pytest.raises(ControlError, match=f"{a.name} is already running"):
        ctl.start(a)
    assert _run_id(rig, a) == before


@pytest.mark.lab
def test_replicaof_and_overrides_hold_from_the_first_instant(rig: Rig) -> None:
    ctl, a, b = rig.ctl, rig.a, rig.b
    ctl.start(a)
    for how in (ctl.start, ctl.restart):  # a first start, then a restart of the running node
        watch = FirstAnswer(rig, b, _role_and_priority)
        watch.start()
        how(b, replicaof=a, overrides={"replica-priority": "0"})
        role, priority = watch.result()
        assert role[0] == "slave" and int(role[2]) == a.announced[1], role
        assert priority == "0"


@pytest.mark.lab
def test_restart_comes_back_empty_without_persistence(rig: Rig) -> None:
    ctl, a = rig.ctl, rig.a
    assert not rig.inv.settings.persistence
    ctl.restart(a)  # a stopped node: restart starts it
    c = _c(rig, a)
    c.mset({f"contract:{i}": i for i in range(500)})
    assert c.dbsize() == 500
    before = _run_id(rig, a)
    ctl.restart(a)
    assert _run_id(rig, a) != before  # a new process, not a reconnect
    assert _c(rig, a).dbsize() == 0


@pytest.mark.lab
def test_safe_start_lets_the_wrapper_choose_the_role(rig: Rig) -> None:
    """No Sentinel answers here: through the wrapper a node follows the reachable primary that
    holds data; without it, it starts as configured (an empty primary)."""
    ctl, a, b, c = rig.ctl, rig.a, rig.b, rig.c
    ctl.start(a, safe=False)
    _c(rig, a).mset({f"contract:{i}": i for i in range(100)})
    ctl.start(b, safe=True)
    role = _c(rig, b).execute_command("ROLE")
    assert role[0] == "slave" and int(role[2]) == a.announced[1], role
    ctl.start(c, safe=False)
    assert _c(rig, c).execute_command("ROLE")[0] == "master"
    assert _c(rig, c).dbsize() == 0


@pytest.mark.lab
def test_log_tail_returns_the_recent_lines(rig: Rig) -> None:
    ctl, a = rig.ctl, rig.a
    ctl.start(a)
    ctl.restart(a)
    pid = _c(rig, a).info("server")["process_id"]
    tail = ctl.log_tail(a, 5)
    assert tail is not None and 1 <= len(tail) <= 5, tail
    assert tail[-1].startswith(f"{pid}:"), tail  # the last line is the running process's
    assert ctl.log_tail(a, 1) == tail[-1:]
    assert ctl.log_tail(a, 0) == []


@pytest.mark.lab
def test_mem_available_is_bytes_or_unknown(rig: Rig) -> None:
    free = rig.ctl.mem_available(rig.a)
    assert free is None or free > 0


# --- refusing: placeholders, and whatever a backend does not implement --------------------------
def _every_operation(ctl: Control, node: Endpoint, other: Endpoint) -> dict[str, Callable[[], Any]]:
    return {
        "is_running": lambda: ctl.is_running(node),
        "stop": lambda: ctl.stop(node),
        "start": lambda: ctl.start(node, replicaof=other, overrides={"replica-priority": "0"}),
        "start safe": lambda: ctl.start(node, safe=True),
        "restart": lambda: ctl.restart(node, replicaof=other),
        "log_tail": lambda: ctl.log_tail(node),
        "mem_available": lambda: ctl.mem_available(node),
    }


def _placeholder_inv(tmp_path: Path, name: str) -> Inventory:
    d = lab_inventory_dict(tmp_path)
    d["control"] = {"backend": name}
    return inventory.from_dict(d, tmp_path / "inventory.yaml")


@pytest.mark.parametrize("name", PLACEHOLDERS)
def test_for_node_refuses_a_placeholder_in_one_line(tmp_path: Path, name: str) -> None:
    inv = _placeholder_inv(tmp_path, name)
    with pytest.raises(ControlError) as e:
        control.for_node(inv, inv.nodes[1])
    msg = str(e.value)
    assert msg.startswith(f"redis-2: control backend {name!r} is not implemented yet"), msg
    assert "\n" not in msg and "by hand" in msg
    assert e.value.code == 2


@pytest.mark.parametrize("name", PLACEHOLDERS)
def test_a_placeholder_refuses_every_operation(tmp_path: Path, name: str) -> None:
    inv = _placeholder_inv(tmp_path, name)
    ctl = control.backend_class(name)(inv)
    for op, call in _every_operation(ctl, inv.nodes[1], inv.nodes[0]).items():
        with pytest.raises(ControlError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(f"control backend {name!r} cannot "), (op, msg)
        assert "\n" not in msg and "by hand" in msg, (op, msg)


def test_what_a_backend_does_not_implement_is_refused_not_skipped(tmp_path: Path) -> None:
    """A backend that only knows whether a node runs: a restart must not pass for done."""

    class Partial(Control):
        backend = "partial"

        def is_running(self, node: Endpoint) -> bool:
            return False

    inv = _placeholder_inv(tmp_path, "lab")
    ctl = Partial(inv)
    node = inv.nodes[0]
    with pytest.raises(ControlError, match="'partial' cannot start a node"):
        ctl.restart(node)
    for op in ("stop", "log_tail", "mem_available"):
        with pytest.raises(ControlError, match="'partial' cannot"):
            _every_operation(ctl, node, inv.nodes[1])[op]()
