"""The files that deploy the cluster on a platform (`config.render --target`): one renderer each.

Every target gets, per service, the rendered redis.conf / sentinel.conf (logging to stdout, no
password in it) and the deployment's inventory.yaml (names and settings, the password only by
the name of its variable), plus what the platform starts the service from:

- railway: `<service>/Dockerfile` on the tool's image (redis-server, Python and this package),
  each service addressed by its private DNS name `<service>.railway.internal`;
- compose: one `docker-compose.yaml`, services addressed by their service names on one network
  (the Docker lab starts its containers from this file);
- systemd: `redis-ha-<name>.service` per node and Sentinel, hosts as the inventory names them.

Every service starts through redis_ha.launch (the password from the environment into a 0600
config, then safestart for nodes). Sentinels resolve and announce hostnames wherever a host is a
name; replicas announce their own name.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from redis_ha import choices, render, units
from redis_ha.errors import InventoryError
from redis_ha.inventory import Endpoint, Inventory

TARGETS = ("railway", "systemd", "compose")
DEFAULT_IMAGE = choices.DEFAULT_IMAGE
DEFAULT_PASSWORD_ENV = "REDIS_PASSWORD"
CONF_DIR = "/etc/redis-ha"  # in the image: the rendered config and the inventory
DATA_DIR = "/data"  # in the image: the config a service runs from, and its data
SYSTEMD_DATA = "/var/lib/redis-ha"  # StateDirectory=redis-ha/<name>
NETWORK = "redis-ha"


def service(ep: Endpoint) -> str:
    """The platform's name for an endpoint: its `control.service`, else its name."""
    return str(ep.control.get("service") or ep.name)


def host_for(target: str, ep: Endpoint) -> str:
    """The name the cluster knows an endpoint by on `target`."""
    if target == "railway":
        return f"{service(ep)}.railway.internal"
    if target == "compose":
        return service(ep)
    return ep.host


def password_env(inv: Inventory) -> str | None:
    """The variable the services read the password from (None: the inventory has no password)."""
    a = inv.auth
    if a.password_env:
        return a.password_env
    return DEFAULT_PASSWORD_ENV if a.password_file else None


def platform_inventory(inv: Inventory, target: str) -> Inventory:
    """The inventory as the services see each other on `target` (hosts by the platform's names)."""
    if target not in TARGETS:
        raise InventoryError(f"unknown target {target!r} (choose one of: {', '.join(TARGETS)})")

    def move(ep: Endpoint) -> Endpoint:
        if target == "systemd":
            return ep
        return dataclasses.replace(ep, host=host_for(target, ep), announce=None)

    return dataclasses.replace(
        inv,
        nodes=tuple(map(move, inv.nodes)),
        sentinels=tuple(map(move, inv.sentinels)),
        lab=False,
    )


def inventory_dict(pinv: Inventory) -> dict[str, Any]:
    """The deployment's inventory.yaml: what safestart inside a service needs, and no secret."""
    env = password_env(pinv)
    d: dict[str, Any] = {"name": pinv.name, "lab": False, "master_name": pinv.master_name}
    if env:
        d["auth"] = {"password_env": env}
        if pinv.auth.username:
            d["auth"]["username"] = pinv.auth.username

    def ep(e: Endpoint) -> dict[str, Any]:
        return {"name": e.name, "host": e.host, "port": e.port}

    d["nodes"] = [ep(n) for n in pinv.nodes]
    d["sentinels"] = [ep(s) for s in pinv.sentinels]
    d["settings"] = dataclasses.asdict(pinv.settings)
    if pinv.tls:  # the platform must provide these files at the same paths
        d["tls"] = {k: str(v) for k, v in dataclasses.asdict(pinv.tls).items()}
    return d


def kind(pinv: Inventory, ep: Endpoint) -> str:
    """The kind of service, `redis` or `sentinel`: it names the config file and the server."""
    return "redis" if ep in pinv.nodes else "sentinel"


def data_dir(target: str, ep: Endpoint) -> str:
    """Where a service keeps the config it runs from: one folder per unit on a shared host."""
    return f"{SYSTEMD_DATA}/{ep.name}" if target == "systemd" else DATA_DIR


def config(pinv: Inventory, target: str, ep: Endpoint, primary: Endpoint) -> str:
    """One service's rendered config: stdout logging, the password added at start."""
    env = password_env(pinv)
    d = data_dir(target, ep)
    if ep in pinv.nodes:
        replicaof = None if ep.name == primary.name else primary
        return render.redis_conf(
            pinv, ep, data_dir=d, replicaof=replicaof, password=None, log_stdout=True,
            password_at_start=env,
        )  # fmt: skip
    return render.sentinel_conf(
        pinv, ep, data_dir=d, primary=primary, password=None, log_stdout=True,
        password_at_start=env,
    )  # fmt: skip


def launch_argv(
    ep: Endpoint, *, conf_dir: str, template: str, conf: str, python: str = "python"
) -> list[str]:
    """The service's command: redis_ha.launch with its rendered config."""
    return [
        python, "-m", "redis_ha.launch", "--inventory", f"{conf_dir}/inventory.yaml",
        "--service", ep.name, "--template", f"{conf_dir}/{template}", "--conf", conf,
    ]  # fmt: skip


def image_argv(pinv: Inventory, ep: Endpoint) -> list[str]:
    """The command inside the image (railway, compose): /etc/redis-ha/<kind>.conf -> /data."""
    k = kind(pinv, ep)
    return launch_argv(ep, conf_dir=CONF_DIR, template=f"{k}.conf", conf=f"{DATA_DIR}/{k}.conf")


def dockerfile(pinv: Inventory, ep: Endpoint, image: str) -> str:
    """A Railway service's Dockerfile: the tool's image, this service's config, its command."""
    k = kind(pinv, ep)
    env = password_env(pinv)
    cmd = image_argv(pinv, ep)
    lines = [
        f"# redis-ha-runbooks: Railway service {service(ep)} ({ep.name} of {pinv.name}); "
        "rendered, edit the inventory instead",
        "# The base image holds redis-server, Python and redis-ha-runbooks (README: Running",
        "# against production). Build with this folder as the context (the service's root).",
        f"ARG BASE_IMAGE={image}",
        "FROM ${BASE_IMAGE}",
        f"COPY inventory.yaml {CONF_DIR}/inventory.yaml",
        f"COPY {k}.conf {CONF_DIR}/{k}.conf",
    ]
    if env:
        ref = "${{shared." + env + "}}"
        lines.append(f"# ${env}: a service variable, {env}={ref}; never in the image")
    lines += [
        "# Logs go to stdout (railway logs); the node starts through redis_ha.safestart",
        f"CMD {json.dumps(cmd)}",
    ]
    return "\n".join(lines) + "\n"


def compose(pinv: Inventory, image: str) -> str:
    """One docker-compose.yaml: every service on one network, named as the inventory names it."""
    env = password_env(pinv)
    services: dict[str, Any] = {}
    for ep in (*pinv.nodes, *pinv.sentinels):
        k = kind(pinv, ep)
        svc: dict[str, Any] = {
            "image": image,
            "hostname": ep.host,
            "command": image_argv(pinv, ep),
        }
        if env:
            svc["environment"] = {env: f"${{{env}:?set {env} to the cluster password}}"}
        svc["volumes"] = [
            f"./inventory.yaml:{CONF_DIR}/inventory.yaml:ro",
            f"./{ep.name}/{k}.conf:{CONF_DIR}/{k}.conf:ro",
        ]
        svc["networks"] = {NETWORK: {"aliases": [ep.host]}}
        svc["restart"] = "unless-stopped"
        services[service(ep)] = svc
    doc = {"name": pinv.name, "services": services, "networks": {NETWORK: {}}}
    head = (
        f"# redis-ha-runbooks: {pinv.name} as compose services (rendered; edit the inventory "
        "instead).\n"
    )
    if env:
        head += f"# The password comes from ${env} in the environment of `docker compose up`.\n"
    return head + yaml.safe_dump(doc, sort_keys=False)


def unit(pinv: Inventory, ep: Endpoint, python: str) -> str:
    """A systemd unit for one node or Sentinel, started through redis_ha.launch."""
    k = kind(pinv, ep)
    cmd = launch_argv(
        ep, conf_dir=units.DEFAULT_CONF_DIR, template=f"{ep.name}.conf",
        conf=f"{data_dir('systemd', ep)}/{k}.conf", python=python,
    )  # fmt: skip
    return units.systemd_unit(
        pinv, ep, exec_start=shlex.join(cmd), state_dir=f"redis-ha/{ep.name}",
        what="Redis" if k == "redis" else "Redis Sentinel",
        password_env=password_env(pinv),
    )  # fmt: skip


def _write(path: Path, text: str) -> Path:
    """Rendered deployment files hold no secret: written readable like any config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def render_target(
    inv: Inventory,
    target: str,
    out: Path,
    *,
    primary: Endpoint | None = None,
    image: str = DEFAULT_IMAGE,
    python: str = units.DEFAULT_PYTHON,
) -> list[Path]:
    """Write every file `target` deploys from into `out`; returns them (re-rendering is a no-op
    on unchanged input)."""
    pinv = platform_inventory(inv, target)
    first = pinv.node((primary or inv.nodes[0]).name)
    inv_text = yaml.safe_dump(inventory_dict(pinv), sort_keys=False)
    files: list[Path] = []
    if target == "systemd":
        files.append(_write(out / "inventory.yaml", inv_text))
    elif target == "compose":
        files.append(_write(out / "inventory.yaml", inv_text))
        files.append(_write(out / "docker-compose.yaml", compose(pinv, image)))
    for ep in (*pinv.nodes, *pinv.sentinels):
        k = kind(pinv, ep)
        text = config(pinv, target, ep, first)
        if target == "systemd":
            files.append(_write(out / f"{ep.name}.conf", text))
            files.append(_write(out / f"redis-ha-{ep.name}.service", unit(pinv, ep, python)))
            continue
        d = out / (service(ep) if target == "railway" else ep.name)
        files.append(_write(d / f"{k}.conf", text))
        if target == "railway":
            files.append(_write(d / "inventory.yaml", inv_text))
            files.append(_write(d / "Dockerfile", dockerfile(pinv, ep, image)))
    return files
