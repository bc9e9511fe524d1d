"""The Docker lab: redis-1 ... sentinel-3 and an `ops` container on a network the lab creates.

Like Railway's private network, every service is reached by its name (a network alias), Sentinels
resolve and announce hostnames, and the tool runs inside the network (`ops`), where those names
resolve. Containers are created through testcontainers (its reaper disabled: its image cannot be
pulled) and labelled with the lab's id, so `down` removes exactly what `up` created. Every
container also has a fixed address on the lab's own subnet, which this host reaches through the
network's bridge (dockerd runs with --bridge=none --iptables=false: no port publishing).

Every node and Sentinel container is started from `config.render --target compose` (rendered/):
its service's command (redis_ha.launch), mounted config and inventory, and its environment (the
password); the lab adds only what compose leaves to the engine (fixed addresses, pinned names).

State lives in a folder (`lab.json`, the two inventories, the password and rendered/):
`inventory.yaml` names the services (used inside the network), `inventory.host.yaml` gives their
addresses (for this host; Sentinels still answer with names there).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redis_ha import deploy, render
from redis_ha import inventory as invmod
from redis_ha.dockerlab import engine, image
from redis_ha.dockerlab.entry import CONF_DIR, START
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab.ports import SETTINGS  # production timings, as the acceptance compares

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # before testcontainers is read

LABEL = "redis-ha.lab"
NODE_PORT, SENTINEL_PORT = 6379, 26379
OPS = "ops"
SOCKET = "/var/run/docker.sock"
NODES = ("redis-1", "redis-2", "redis-3")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
HOST_OFFSET = {"redis-1": 11, "redis-2": 12, "redis-3": 13, "sentinel-1": 21, "sentinel-2": 22}
HOST_OFFSET |= {"sentinel-3": 23, OPS: 30}
COMPOSE = "docker-compose.yaml"


def _testcontainers() -> Any:
    try:
        from testcontainers.core import container, network
    except ImportError:
        raise LabError(
            "the Docker lab needs testcontainers: pip install 'redis-ha-runbooks[docker]'", code=3
        ) from None
    return container, network


@dataclass
class State:
    """What `up` created: enough for `down` and for the tests to find everything again."""

    id: str
    network: str
    subnet: str
    image: str
    containers: dict[str, str] = field(default_factory=dict)  # service -> container name
    addresses: dict[str, str] = field(default_factory=dict)  # service -> IP
    # Every name pinned in each container's /etc/hosts to its fixed address, so a stopped node's
    # name still resolves: when it does not, Sentinel cannot fail over (redis/redis#11241;
    # measured here: "Failed to resolve hostname" every second, TILT, no failover in 40 s).
    # False: Docker's own DNS only (names vanish with their container), to rehearse that fault.
    pinned: bool = True

    def hosts(self) -> dict[str, str]:
        return dict(self.addresses) if self.pinned else {}

    def ip(self, offset: int) -> str:
        return self.subnet.rsplit(".", 1)[0] + f".{offset}"


def create_network(client: Any, lab_id: str) -> tuple[Any, str]:
    """A user-defined bridge network of this lab's own, on a free 10.213.N.0/24 subnet."""
    import docker.errors
    from docker.types import IPAMConfig, IPAMPool

    _, network = _testcontainers()
    tried = random.sample(range(1, 255), 20)
    for n in tried:
        subnet = f"10.213.{n}.0/24"
        net = network.Network(
            docker_network_kw={
                "ipam": IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]),
                "labels": {LABEL: lab_id},
            }
        )
        net.name = f"rh-lab-{lab_id}"
        try:
            return net.create(), subnet
        except docker.errors.APIError as e:
            if "overlap" not in str(e).lower():
                raise LabError(f"cannot create the lab's Docker network: {e}") from None
    raise LabError(f"no free 10.213.N.0/24 subnet for the lab's network (tried {len(tried)})")


def start_container(
    net: Any,
    *,
    image_tag: str,
    name: str,
    alias: str,
    ip: str,
    command: list[str],
    files: dict[str, bytes],
    lab_id: str,
    env: dict[str, str] | None = None,
    volumes: Iterable[tuple[str, ...]] = (),
    hosts: dict[str, str] | None = None,
) -> Any:
    """Create and start one container on network `net` (its name) at `ip`, reached as `alias`,
    with `files` copied in before it starts (never bind-mounted: Sentinel rewrites its own)."""
    from docker import version
    from docker.types import EndpointConfig

    container, _ = _testcontainers()
    c = container.DockerContainer(image_tag).with_name(name).with_command(command)
    c = c.with_kwargs(
        network=net,
        networking_config={
            net: EndpointConfig(version.__version__, aliases=[alias], ipv4_address=ip)
        },
        labels={LABEL: lab_id, f"{LABEL}.service": alias},
        hostname=alias,
        # Names outside the lab are never asked of anyone: Docker's DNS forwards them to this
        # address, where nothing listens, so a stopped container's name fails at once (and no
        # query leaves the lab). Forwarded to the host's resolvers instead, each lookup of a
        # stopped node blocked Sentinel ~10 s and sent it into TILT (measured).
        dns=["127.0.0.1"],
        dns_opt=["timeout:1", "attempts:1"],
        extra_hosts=hosts or {},
    )
    for key, value in (env or {}).items():
        c = c.with_env(key, value)
    for host, inside, *mode in volumes:
        c = c.with_volume_mapping(host, inside, mode=mode[0] if mode else "rw")
    for path, data in files.items():
        c = c.with_copy_into_container(data, path, 0o600)
    try:
        return c.start()
    except Exception as e:
        raise LabError(f"cannot start container {name}: {str(e).splitlines()[0][:200]}") from None


_VAR = re.compile(r"^\$\{(\w+)(?::\?[^}]*)?\}$")


def compose_env(svc: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """A compose service's environment, `${VAR}` / `${VAR:?why}` taken from `values`."""
    env = {}
    for key, raw in (svc.get("environment") or {}).items():
        m = _VAR.match(str(raw))
        if m and m[1] not in values:
            raise LabError(f"the compose file needs ${m[1]}, which the lab does not set")
        env[str(key)] = values[m[1]] if m else str(raw)
    return env


def compose_volumes(svc: dict[str, Any], base: Path) -> list[tuple[str, str, str]]:
    """A compose service's bind mounts (`./src:/dst[:ro]`), sources resolved against `base`."""
    out = []
    for v in svc.get("volumes") or []:
        src, dst, *mode = str(v).split(":")
        out.append((str((base / src).resolve()), dst, mode[0] if mode else "rw"))
    return out


def node_command(name: str) -> list[str]:
    """A node container's command: the entry that honours the docker backend's start options."""
    conf = f"{CONF_DIR}/redis.conf"
    return ["python", "-m", "redis_ha.dockerlab.entry", name, "--", "redis-server", conf]


def remove(docker: Any, lab_id: str) -> list[str]:
    """Remove every container and network labelled with this lab's id; returns the names."""
    gone = []
    for c in docker.containers.list(all=True, filters={"label": f"{LABEL}={lab_id}"}):
        c.remove(force=True)
        gone.append(c.name)
    for n in docker.networks.list(filters={"label": f"{LABEL}={lab_id}"}):
        n.remove()
    return gone


class DockerLab:
    """One Docker lab, its state in `dir`."""

    def __init__(self, state_dir: Path | str, *, pin_names: bool = True) -> None:
        self.dir = Path(state_dir).resolve()
        self.pin_names = pin_names
        self.state_file = self.dir / "lab.json"

    # --- state ------------------------------------------------------------------------------
    def state(self) -> State | None:
        try:
            return State(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @property
    def inventory_path(self) -> Path:
        """The inventory by names, as the ops container (and an operator inside) uses it."""
        return self.dir / "inventory.yaml"

    @property
    def host_inventory_path(self) -> Path:
        return self.dir / "inventory.host.yaml"

    def inventory(self, *, host: bool = False) -> Inventory:
        return invmod.load(self.host_inventory_path if host else self.inventory_path)

    def _inventory_dict(self, st: State, *, host: bool) -> dict[str, Any]:
        def ep(name: str, port: int) -> dict[str, Any]:
            return {
                "name": name,
                "host": st.addresses[name] if host else name,
                "port": port,
                "control": {"container": st.containers[name]},
            }

        return {
            "name": "dockerlab",
            "lab": True,
            "lab_dir": "lab",
            "master_name": "mymaster",
            "auth": {"password_file": "password"},
            "nodes": [ep(n, NODE_PORT) for n in NODES],
            "sentinels": [ep(s, SENTINEL_PORT) for s in SENTINELS],
            "settings": SETTINGS,
            "control": {"backend": "docker", "network": st.network},
            "app": {"config_backend": "envfile", "env_file": "app.env"},
        }

    # --- up / down --------------------------------------------------------------------------
    def up(self, timeout: float = 60.0) -> State:
        """Create the network and the seven containers, and wait for a healthy cluster."""
        if self.state() is not None:
            raise LabError(f"a Docker lab is already recorded in {self.dir}; run lab.down first")
        docker = engine.client()
        tag = image.ensure(docker)
        lab_id = secrets.token_hex(3)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            net, subnet = create_network(docker, lab_id)
            st = State(id=lab_id, network=net.name, subnet=subnet, image=tag)
            st.pinned = self.pin_names
            for svc, offset in HOST_OFFSET.items():
                st.containers[svc] = f"rh-{lab_id}-{svc}"
                st.addresses[svc] = st.ip(offset)
            self._write_state(st)
            render.write_private(self.dir / "password", secrets.token_urlsafe(18) + "\n")
            for host in (False, True):
                path = self.host_inventory_path if host else self.inventory_path
                path.write_text(
                    yaml.safe_dump(self._inventory_dict(st, host=host), sort_keys=False)
                )
            inv = self.inventory()
            self.render(inv, tag)
            for ep in (*inv.nodes, *inv.sentinels):
                self._start_service(st, ep.name, st.addresses[ep.name])
            start_container(
                st.network,
                image_tag=tag,
                name=st.containers[OPS],
                alias=OPS,
                ip=st.addresses[OPS],
                command=["python", "-c", "import signal; signal.pause()"],
                files=self._common(),
                lab_id=lab_id,
                env={"REDIS_HA_INVENTORY": f"{CONF_DIR}/inventory.yaml", "NO_COLOR": "1"},
                volumes=[(SOCKET, SOCKET)] if Path(SOCKET).exists() else [],
                hosts=st.hosts(),
            )
            self.wait_ready(timeout)
        except BaseException:
            remove(docker, lab_id)
            self.state_file.unlink(missing_ok=True)
            raise
        return st

    def _common(self) -> dict[str, bytes]:
        return {
            f"{CONF_DIR}/inventory.yaml": self.inventory_path.read_bytes(),
            f"{CONF_DIR}/password": (self.dir / "password").read_bytes(),
        }

    def _start_service(
        self, st: State, name: str, ip: str, start: dict[str, Any] | None = None
    ) -> None:
        """Start one node or Sentinel container as its rendered compose service says (`start`:
        the launch options, as the docker backend writes them)."""
        svc = self._service(name)
        env = deploy.password_env(self.inventory()) or deploy.DEFAULT_PASSWORD_ENV
        values = {env: (self.dir / "password").read_text().strip()}
        files = {} if start is None else {str(START): json.dumps(start).encode()}
        start_container(
            st.network,
            image_tag=str(svc["image"]),
            name=st.containers[name],
            alias=svc["networks"][deploy.NETWORK]["aliases"][0],
            ip=ip,
            command=[str(w) for w in svc["command"]],
            files=files,
            lab_id=st.id,
            env=compose_env(svc, values),
            volumes=compose_volumes(svc, self.dir / "rendered"),
            hosts=st.hosts(),
        )

    def replace(self, name: str, offset: int) -> str:
        """A redeploy: remove the node's container and start a new one with the same name at a
        new address (`offset` on the subnet), through safestart; returns the new address. In a
        pinned lab the others' /etc/hosts keep the old address: rehearse this unpinned."""
        st = self.state()
        assert st is not None and name in NODES
        engine.client().containers.get(st.containers[name]).remove(force=True)
        st.addresses[name] = st.ip(offset)
        self._write_state(st)
        self._start_service(st, name, st.addresses[name], {"args": [], "safe": True})
        return st.addresses[name]

    def render(self, inv: Inventory, image_tag: str) -> Path:
        """The compose target of `config.render` (rendered/): every node and Sentinel container
        starts from its service there (command, environment, mounted config and inventory)."""
        out = self.dir / "rendered"
        deploy.render_target(inv, "compose", out, image=image_tag)
        return out / COMPOSE

    def _service(self, name: str) -> dict[str, Any]:
        doc = yaml.safe_load((self.dir / "rendered" / COMPOSE).read_text())
        return dict(doc["services"][name])

    def _write_state(self, st: State) -> None:
        self.state_file.write_text(json.dumps(st.__dict__, indent=1))

    def down(self) -> list[str]:
        """Remove what `up` created (by its label) and the state folder's record."""
        st = self.state()
        if st is None:
            return []
        gone = remove(engine.client(), st.id)
        self.state_file.unlink(missing_ok=True)
        return gone

    # --- inside the network -----------------------------------------------------------------
    def ops(self) -> Any:
        st = self.state()
        if st is None:
            raise LabError(f"no Docker lab recorded in {self.dir}; run lab.up --backend docker")
        return engine.client().containers.get(st.containers[OPS])

    def exec(self, argv: list[str], timeout: float = 120.0) -> tuple[int, str]:
        """Run `argv` in the ops container (as `railway ssh` would on the ops service)."""
        import subprocess

        st = self.state()
        assert st is not None
        p = subprocess.run(
            ["docker", "exec", "-e", "NO_COLOR=1", "-e", "COLUMNS=200",
             st.containers[OPS], *argv],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return p.returncode, p.stdout + p.stderr

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait, from inside the network, for a primary, in-sync replicas and Sentinels that
        know each other."""
        code = (
            "import sys; from redis_ha import inventory; from redis_ha.lab.cluster import "
            f"wait_ready; wait_ready(inventory.load(sys.argv[1]), {timeout})"
        )
        deadline = time.monotonic() + timeout + 30
        rc, out = self.exec(
            ["python", "-c", code, f"{CONF_DIR}/inventory.yaml"], timeout=timeout + 30
        )
        if rc != 0 or time.monotonic() > deadline:
            raise LabError(out.strip().splitlines()[-1] if out.strip() else "lab not ready")
