"""Start commands that run redis-server through the safestart wrapper: systemd and Railway.

A supervisor that restarts redis-server directly can bring an empty primary back before the
Sentinels notice and wipe the cluster (runbooks/safe-restart.md); these start it through
`python -m redis_ha.safestart`, which exec()s redis-server, so the supervisor's PID stays right.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the defaults below are config.render-units' help: no inventory code for it
    from redis_ha.inventory import Endpoint, Inventory

DEFAULT_PYTHON = "/opt/redis-ha-runbooks/.venv/bin/python"
DEFAULT_SERVER = "/usr/bin/redis-server"
DEFAULT_CONF_DIR = "/etc/redis-ha"


def _addr(ep: Endpoint) -> str:
    host, port = ep.announced
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def exec_start_default(
    inv: Inventory,
    node: Endpoint,
    *,
    python: str = DEFAULT_PYTHON,
    server: str = DEFAULT_SERVER,
    conf_dir: str = DEFAULT_CONF_DIR,
) -> str:
    """The systemd ExecStart command: the wrapper reads the inventory installed next to the conf."""
    argv = [
        python,
        "-m",
        "redis_ha.safestart",
        "--inventory",
        f"{conf_dir}/inventory.yaml",
        "--node",
        node.name,
        "--",
        server,
        f"{conf_dir}/{node.name}.conf",
    ]
    return shlex.join(argv)


def systemd_unit(
    inv: Inventory,
    node: Endpoint,
    *,
    exec_start: str | None = None,
    state_dir: str | None = None,
    what: str = "Redis",
    password_env: str | None = None,
    **kw: str,
) -> str:
    """A unit for one node (or Sentinel): Type=simple works because the wrapper exec()s (same
    PID). `exec_start` replaces the safestart command; `state_dir` adds a StateDirectory;
    `password_env` names the password variable (default the inventory's)."""
    conf_dir = kw.get("conf_dir", DEFAULT_CONF_DIR)
    env = password_env or inv.auth.password_env
    lines = [
        f"# redis-ha-runbooks: {node.name} of {inv.name} (rendered; edit the inventory instead)",
        "[Unit]",
        f"Description={what} {node.name} ({inv.master_name}), started through redis_ha.safestart"
        if what == "Redis"
        else f"Description={what} {node.name} ({inv.master_name})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "User=redis",
        "Group=redis",
    ]
    if state_dir:
        lines += [f"StateDirectory={state_dir}", "StateDirectoryMode=0700"]
    if env:
        lines.append(f"# ${env} (the password) comes from this root-only file, if present")
        lines.append(f"EnvironmentFile=-{conf_dir}/password.env")
    if what == "Redis":
        lines += [
            "# $REDIS_HA_ARGS: redis-server arguments a procedure sets for the next start (ssh)",
            f"EnvironmentFile=-/run/redis-ha/{node.name}.env",
        ]
    lines += [
        f"ExecStart={exec_start or exec_start_default(inv, node, **kw)}",
        "Restart=always",
        "RestartSec=1",
        "LimitNOFILE=65535",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def railway(inv: Inventory, node: Endpoint, *, conf: str = "/etc/redis/redis.conf") -> str:
    """Railway: the service's start command and variables (environment mode, no inventory)."""
    cmd = ["python", "-m", "redis_ha.safestart"]
    if inv.auth.password_env:
        cmd += ["--password-env", inv.auth.password_env]
    cmd += ["--", "redis-server", conf]
    peers = ",".join(_addr(n) for n in inv.nodes if n != node)
    sentinels = ",".join(_addr(s) for s in inv.sentinels)
    lines = [
        f"# redis-ha-runbooks: Railway service {node.control.get('service', node.name)} "
        f"({node.name} of {inv.name})",
        "# Start command (Settings > Deploy > Custom Start Command):",
        shlex.join(cmd),
        "# Service variables:",
        f"REDIS_HA_SELF={_addr(node)}",
        f"REDIS_HA_SENTINELS={sentinels}",
        f"REDIS_HA_PEERS={peers}",
        f"REDIS_HA_MASTER_NAME={inv.master_name}",
    ]
    if inv.auth.password_env:
        lines.append(f"# and ${inv.auth.password_env} (a shared variable; never written here)")
    return "\n".join(lines) + "\n"


def render_units(
    inv: Inventory,
    out: Path,
    *,
    python: str = DEFAULT_PYTHON,
    server: str = DEFAULT_SERVER,
    conf_dir: str = DEFAULT_CONF_DIR,
) -> list[Path]:
    """Write `<node>.service` and `<node>.railway` for every node; returns the files."""
    from redis_ha.render import write_private

    files = []
    for n in inv.nodes:
        unit = out / f"redis-ha-{n.name}.service"
        write_private(unit, systemd_unit(inv, n, python=python, server=server, conf_dir=conf_dir))
        rail = out / f"{n.name}.railway"
        write_private(rail, railway(inv, n))
        files += [unit, rail]
    return files
