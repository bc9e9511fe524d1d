"""Render redis.conf and sentinel.conf from an inventory: one renderer for the lab and production.

The lab starts processes from exactly these files, so a setting rehearsed in the lab is the
setting deployed. Sentinel rewrites its own file at run time, so it must be writable.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from pathlib import Path

from redis_ha.inventory import LOOPBACK, Endpoint, Inventory
from redis_ha.paths import shipped

# Who the Sentinels are to the nodes and to each other, and who replicas are to their primary,
# when the shipped ACL users are on (inventories/acl/*.acl).
SENTINEL_USER, REPLICA_USER = "ha-sentinel", "ha-replica"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def listen(inv: Inventory, ep: Endpoint) -> list[str]:
    """The port lines: plain, or TLS only (the plain port closed) when the inventory has `tls:`,
    with replication and Sentinel's own connections over TLS too. Clients without a certificate
    are let in (`tls-auth-clients optional`: the app needs only the CA); one with a certificate
    must present one the CA signed."""
    t = inv.tls
    if t is None:
        return [f"port {ep.port}"]
    return [
        "port 0",
        f"tls-port {ep.port}",
        f'tls-cert-file "{t.cert_file}"',
        f'tls-key-file "{t.key_file}"',
        f'tls-ca-cert-file "{t.ca_file}"',
        "tls-replication yes",
        "tls-auth-clients optional",
    ]


def _bind(ep: Endpoint, lab: bool) -> str:
    """The lab's processes listen on their own loopback address only; a named host (a
    container, a server) listens on every interface, like production."""
    if lab and _is_ip(ep.host):
        return ep.host
    if lab and ep.host in LOOPBACK:
        return "127.0.0.1"
    return "* -::*"


def _logfile(data_dir: Path | str, name: str, stdout: bool) -> str:
    """Where a process logs: a file in its folder, or "" (stdout) where the platform collects
    stdout (docker logs, railway logs, journald)."""
    return '""' if stdout else f'"{Path(data_dir) / name}"'


def redis_conf(
    inv: Inventory,
    node: Endpoint,
    *,
    data_dir: Path | str,
    replicaof: Endpoint | None,
    password: str | None,
    extra: dict[str, str] | None = None,
    log_stdout: bool = False,
    acl: bool = False,
    password_at_start: str | None = None,
) -> str:
    """The redis.conf for one node; `replicaof` None makes it start as a primary.

    `password_at_start` (a variable's name) leaves the password lines out: redis_ha.launch adds
    them from that variable when the service starts, so the rendered file holds no secret."""
    s = inv.settings
    lines = [
        f"# redis-ha-runbooks: {node.name} of {inv.name} (rendered; edit the inventory instead)",
        *listen(inv, node),
        f"bind {_bind(node, inv.lab)}",
        "protected-mode no" if password or password_at_start else "protected-mode yes",
        "daemonize no",
        f'dir "{data_dir}"',
        f"logfile {_logfile(data_dir, 'redis.log', log_stdout)}",
        "loglevel notice",
        f"replica-announce-ip {node.announced[0]}",
        f"replica-announce-port {node.announced[1]}",
    ]
    if s.persistence:
        lines += ['save "3600 1 300 100 60 10000"', "appendonly yes"]
    else:
        lines += ['save ""', "appendonly no"]
    lines += [
        f"min-replicas-to-write {s.min_replicas_to_write}",
        f"min-replicas-max-lag {s.min_replicas_max_lag}",
        f"repl-diskless-sync {'yes' if s.repl_diskless_sync else 'no'}",
        f"repl-diskless-sync-delay {s.repl_diskless_sync_delay}",
        f"replica-priority {s.replica_priority}",
        f"maxmemory {s.maxmemory}",
        f"maxmemory-policy {s.maxmemory_policy}",
    ]
    if password_at_start:
        lines.append(f"# requirepass, masterauth: added at start from ${password_at_start}")
    else:
        lines += redis_auth(password, acl)
    if replicaof:
        lines.append(f"replicaof {replicaof.announced[0]} {replicaof.announced[1]}")
    for k, v in (extra or {}).items():
        lines.append(f"{k} {v}")
    return "\n".join(lines) + "\n"


def sentinel_conf(
    inv: Inventory,
    sentinel: Endpoint,
    *,
    data_dir: Path | str,
    primary: Endpoint,
    password: str | None,
    log_stdout: bool = False,
    acl: bool = False,
    password_at_start: str | None = None,
) -> str:
    """The sentinel.conf for one Sentinel, monitoring `primary` under the inventory's name
    (`password_at_start`: as in redis_conf)."""
    s = inv.settings
    m = inv.master_name
    lines = [
        f"# redis-ha-runbooks: {sentinel.name} of {inv.name} (rendered; Sentinel rewrites it)",
        *listen(inv, sentinel),
        f"bind {_bind(sentinel, inv.lab)}",
        "protected-mode no" if password or password_at_start else "protected-mode yes",
        "daemonize no",
        f'dir "{data_dir}"',
        f"logfile {_logfile(data_dir, 'sentinel.log', log_stdout)}",
        f"sentinel announce-ip {sentinel.host}",
        f"sentinel announce-port {sentinel.port}",
    ]
    hosts = [n.host for n in inv.nodes] + [x.host for x in inv.sentinels]
    if not all(_is_ip(h) for h in hosts):
        lines += ["sentinel resolve-hostnames yes", "sentinel announce-hostnames yes"]
    phost, pport = primary.announced
    lines.append(f"sentinel monitor {m} {phost} {pport} {s.quorum}")
    lines += [
        f"sentinel down-after-milliseconds {m} {s.down_after_ms}",
        f"sentinel failover-timeout {m} {s.failover_timeout_ms}",
        f"sentinel parallel-syncs {m} {s.parallel_syncs}",
    ]
    if password_at_start:
        lines.append(f"# requirepass, sentinel auth-pass: added at start from ${password_at_start}")
    else:
        lines += sentinel_auth(m, password, acl)
    return "\n".join(lines) + "\n"


def redis_auth(password: str | None, acl: bool = False) -> list[str]:
    """A node's password lines (and the shipped ACL users)."""
    lines = [f'requirepass "{password}"', f'masterauth "{password}"'] if password else []
    if acl:
        lines += [*acl_users("nodes", password), f"masteruser {REPLICA_USER}"]
    return lines


def sentinel_auth(master_name: str, password: str | None, acl: bool = False) -> list[str]:
    """A Sentinel's password lines: its own, and the ones it uses towards nodes and peers."""
    m = master_name
    lines = []
    if password:
        lines += [
            f'requirepass "{password}"',
            f'sentinel auth-pass {m} "{password}"',
            f'sentinel sentinel-pass "{password}"',
        ]
    if acl:
        lines += [
            *acl_users("sentinels", password),
            f"sentinel auth-user {m} {SENTINEL_USER}",
            f"sentinel sentinel-user {SENTINEL_USER}",
        ]
    return lines


def acl_users(kind: str, password: str | None) -> list[str]:
    """The shipped ACL users of `kind` ("nodes" or "sentinels") as config lines, each with the
    SHA-256 of `password` (never the password itself): the lab gives every user its password."""
    text = (shipped("inventories") / "acl" / f"{kind}.acl").read_text()
    secret = ("#" + hashlib.sha256(password.encode()).hexdigest()) if password else "nopass"
    return [f"{ln} {secret}" for ln in text.splitlines() if ln.startswith("user ")]


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner: rendered configs hold the password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def render_all(inv: Inventory, out: Path, primary: Endpoint | None = None) -> list[Path]:
    """Write one config per node and Sentinel into `out` for deployment; returns the files."""
    primary = primary or inv.nodes[0]
    pw = inv.password()
    files: list[Path] = []
    for n in inv.nodes:
        p = out / f"{n.name}.conf"
        replicaof = None if n == primary else primary
        data = n.control.get("data_dir", "/data")
        write_private(p, redis_conf(inv, n, data_dir=data, replicaof=replicaof, password=pw))
        files.append(p)
    for s in inv.sentinels:
        p = out / f"{s.name}.conf"
        data = s.control.get("data_dir", "/data")
        write_private(p, sentinel_conf(inv, s, data_dir=data, primary=primary, password=pw))
        files.append(p)
    return files
