"""Hosts reached over ssh (Fabric): one shell command per operation, systemd by default.

Every command is a template the inventory may replace (`control.commands`, node over inventory):
`{name}` (the node), `{unit}` (`control.ssh.unit`, default `redis-ha-{name}`), `{port}`,
`{lines}` (log reads) and `{args}`: the extra redis-server arguments a procedure needs from the
node's first instant (`--replicaof h p --replica-priority 0`, shell-quoted words), which the
systemd default hands to the unit through `/run/redis-ha/{name}.env` (`$REDIS_HA_ARGS`, which
redis_ha.safestart appends; the units `config.render-units` writes read that file). Literal
braces in a command are doubled (`{{ }}`). The backend does not trust a command's exit alone:
`start` returns once the node answers the Redis protocol, `stop` once the process is gone and
the port refuses, both within `control.ssh.start_timeout` / `stop_timeout`.

Host keys are checked against `control.ssh.known_hosts` (default ~/.ssh/known_hosts); an unknown
key is refused unless `accept_new_host_key: true` (then it is added to that file, like
OpenSSH's accept-new); a changed key is always refused. Every failure of the connection (wrong
key, unknown host key, unreachable host, timeout) is one ControlError line naming the host.
"""

from __future__ import annotations

import shlex
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import redis
from fabric import Connection
from invoke.exceptions import CommandTimedOut

from redis_ha.control.base import Control, ControlError, server_words, wait_until
from redis_ha.inventory import Endpoint, Inventory, hostspec

# The systemd defaults. `restart` empty: the stop command, then the start command (so new
# arguments hold from the first instant); give one to run a single command instead.
DEFAULT_COMMANDS: dict[str, str] = {
    "start": (
        "mkdir -p /run/redis-ha && printf 'REDIS_HA_ARGS=%s\\n' \"$(printf '%s ' {args})\" "
        "> /run/redis-ha/{name}.env && systemctl start {unit}"
    ),
    # The rendered units always start through redis_ha.safestart: the same command.
    "start_safe": "",
    "stop": "systemctl stop {unit}",
    "restart": "",
    "is_running": "systemctl is-active --quiet {unit}",
    "log": "journalctl --unit {unit} --lines {lines} --no-pager --output cat",
    "mem_available": "awk '/^MemAvailable:/ {{print $2 * 1024}}' /proc/meminfo",
}


@dataclass(frozen=True)
class Target:
    """Where and how to log in: one host, optionally through a jump host."""

    host: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    agent: bool = True
    known_hosts: str = "~/.ssh/known_hosts"
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0
    jump: Target | None = None

    def __str__(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"{who}{self.host}:{self.port}"


def options(inv: Inventory, ep: Endpoint) -> dict[str, Any]:
    """The endpoint's `control.ssh` over the inventory's."""
    return {**(inv.control.get("ssh") or {}), **(ep.control.get("ssh") or {})}


def target(inv: Inventory, ep: Endpoint) -> Target:
    """The ssh login for an endpoint's host (`control.ssh.host`, default the endpoint's host)."""
    o = options(inv, ep)
    common: dict[str, Any] = {
        "user": o.get("user"),
        "key_file": str(Path(o["key_file"]).expanduser()) if o.get("key_file") else None,
        "agent": bool(o.get("agent", not o.get("key_file"))),
        "known_hosts": str(o.get("known_hosts") or "~/.ssh/known_hosts"),
        "accept_new_host_key": bool(o.get("accept_new_host_key", False)),
        "connect_timeout": float(o.get("connect_timeout", 10.0)),
    }
    jump = None
    if o.get("jump"):
        juser, jhost, jport = hostspec(str(o["jump"]))
        jump = Target(host=jhost, port=jport or 22, **{**common, "user": juser or common["user"]})
    return Target(
        host=str(o.get("host") or ep.host), port=int(o.get("port", 22)), jump=jump, **common
    )


# --- connections: one per target per process, shared by the backend and the tunnels ----------
_CONNECTIONS: dict[Target, Connection] = {}
_LOCK = threading.Lock()


def connection(t: Target) -> Connection:
    """An open Fabric connection to `t` (through its jump host), reused while it lives."""
    with _LOCK:
        c = _CONNECTIONS.get(t)
        if c is not None and c.is_connected:
            return c
        c = _open(t)
        _CONNECTIONS[t] = c
        return c


def _open(t: Target) -> Connection:
    gateway = _open(t.jump) if t.jump else None
    connect_kwargs: dict[str, Any] = {
        "allow_agent": t.agent,
        "look_for_keys": False,  # only the key the inventory names (or the agent's)
        "banner_timeout": t.connect_timeout,
        "auth_timeout": t.connect_timeout,
    }
    if t.key_file:
        connect_kwargs["key_filename"] = [t.key_file]
    c = Connection(
        t.host,
        user=t.user,
        port=t.port,
        connect_timeout=int(max(1, t.connect_timeout)),
        connect_kwargs=connect_kwargs,
        gateway=gateway,
    )
    # Fabric accepts any host key by default (AutoAddPolicy, nothing loaded): check them.
    known = Path(t.known_hosts).expanduser()
    if t.accept_new_host_key and not known.exists():
        known.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        known.touch(mode=0o600)
    if known.exists():
        c.client.load_host_keys(str(known))  # an added key is saved back to this file
    policy = paramiko.AutoAddPolicy() if t.accept_new_host_key else paramiko.RejectPolicy()
    c.client.set_missing_host_key_policy(policy)
    try:
        c.open()
    except Exception as e:  # paramiko and socket errors of every kind: one line each
        raise ControlError(f"ssh {t}: {_why(e, t)}", code=3) from None
    return c


def _why(e: BaseException, t: Target) -> str:
    """One line for a failed ssh connection, with what to do about it."""
    text = str(e)
    if isinstance(e, paramiko.BadHostKeyException):
        return (
            f"host key does not match {t.known_hosts} (a changed host, or someone in between); "
            "check it before you replace the entry"
        )
    if "not found in known_hosts" in text:
        return (
            f"host key unknown (not in {t.known_hosts}); check its fingerprint, then add it "
            "(ssh-keyscan) or set control.ssh.accept_new_host_key: true once"
        )
    if isinstance(e, paramiko.AuthenticationException) or "authentication methods" in text:
        key = f"key {t.key_file}" if t.key_file else "the agent's keys"
        return f"authentication failed for user {t.user or '(default)'} with {key}"
    if isinstance(e, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
        return "connection refused (no ssh server on that port?)"
    if isinstance(e, socket.gaierror):
        return "host name does not resolve"
    if isinstance(e, TimeoutError | socket.timeout):
        return f"unreachable (no answer within {t.connect_timeout:g} s)"
    if isinstance(e, OSError):
        return f"unreachable ({e.strerror or text})"
    return (text.splitlines() or [type(e).__name__])[0]


def forget(t: Target) -> None:
    """Close and drop the cached connection to `t` (tests stop their sshd)."""
    with _LOCK:
        c = _CONNECTIONS.pop(t, None)
    if c is not None:
        c.close()


# --- the backend ----------------------------------------------------------------------------
class SshControl(Control):
    """A node on a host reached over ssh: its commands run there (with sudo when asked)."""

    backend = "ssh"

    def _commands(self, node: Endpoint) -> dict[str, str]:
        return {
            **DEFAULT_COMMANDS,
            **(self.inv.control.get("commands") or {}),
            **(node.control.get("commands") or {}),
        }

    def _command(self, node: Endpoint, which: str, **values: Any) -> str:
        o = options(self.inv, node)
        unit = str(o.get("unit") or "redis-ha-{name}").format(name=node.name)
        template = self._commands(node)[which]
        return template.format(name=node.name, unit=unit, port=node.port, **values)

    def run(self, node: Endpoint, command: str, *, check: bool = True) -> Any:
        """Run one shell command on the node's host; a failure is one line naming both."""
        o = options(self.inv, node)
        t = target(self.inv, node)
        if o.get("sudo"):
            command = f"sudo -n sh -c {shlex.quote(command)}"
        timeout = float(o.get("command_timeout", 60.0))
        c = connection(t)
        try:
            r = c.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
        except CommandTimedOut:
            raise ControlError(
                f"{node.name}: `{command}` on {t} did not finish within {timeout:g} s", code=3
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            forget(t)
            raise ControlError(f"{node.name}: ssh {t}: {_why(e, t)}", code=3) from None
        if check and r.exited != 0:
            last = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["-"])[-1]
            raise ControlError(
                f"{node.name}: `{command}` failed on {t} (exit {r.exited}): {last[:200]}", code=3
            )
        return r

    def is_running(self, node: Endpoint) -> bool:
        return bool(self.run(node, self._command(node, "is_running"), check=False).exited == 0)

    def stop(self, node: Endpoint) -> None:
        if not self.is_running(node):
            return
        self.run(node, self._command(node, "stop"))
        gone = lambda: not self.is_running(node) and not _answers(self.inv, node)  # noqa: E731
        self._wait(node, "stop_timeout", 30.0, gone, "stop")

    def _start(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> None:
        self.run(node, self._start_command(node, replicaof, overrides, safe))
        self._wait(node, "start_timeout", 60.0, lambda: _answers(self.inv, node), "answer")

    def _start_command(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> str:
        which = "start_safe" if safe and self._commands(node)["start_safe"] else "start"
        return self._command(node, which, args=server_args(replicaof, overrides))

    def _restart(
        self,
        node: Endpoint,
        replicaof: Endpoint | None,
        overrides: dict[str, str],
        safe: bool | None,
    ) -> None:
        """The `restart` command when the inventory gives one, else stop then start."""
        if not self._commands(node)["restart"]:
            super()._restart(node, replicaof, overrides, safe)
            return
        args = server_args(replicaof, overrides)
        self.run(node, self._command(node, "restart", args=args))
        self._wait(node, "start_timeout", 60.0, lambda: _answers(self.inv, node), "answer")

    def log_tail(self, node: Endpoint, lines: int = 200) -> list[str] | None:
        if lines <= 0:
            return []
        out = self.run(node, self._command(node, "log", lines=int(lines))).stdout
        found = out.splitlines()[-lines:]
        return found or None

    def mem_available(self, node: Endpoint) -> int | None:
        out = self.run(node, self._command(node, "mem_available"), check=False)
        try:
            return int(float(out.stdout.strip())) if out.exited == 0 else None
        except ValueError:
            return None

    def _wait(self, node: Endpoint, key: str, default: float, done: Any, what: str) -> None:
        timeout = float(options(self.inv, node).get(key, default))
        wait_until(
            done,
            timeout,
            f"{node.name}: did not {what} within {timeout:g} s after the {what} command "
            f"({target(self.inv, node)}); look at its log",
        )


def server_args(replicaof: Endpoint | None, overrides: dict[str, str]) -> str:
    """The extra redis-server arguments as shell-quoted words (`{args}` of the commands)."""
    return shlex.join(server_words(replicaof, overrides))


def _answers(inv: Inventory, node: Endpoint) -> bool:
    """True when the node answers the Redis protocol (LOADING or NOAUTH count as answers)."""
    from redis_ha.conn import client

    c = client(inv, node, timeout=0.5)
    try:
        c.ping()
        return True
    except (redis.AuthenticationError, redis.BusyLoadingError, redis.ResponseError):
        return True  # it answered, if not with PONG
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        c.close()
