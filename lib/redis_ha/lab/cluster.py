"""The local lab: real redis-server and redis-sentinel processes on loopback, managed by PID.

State lives in the inventory's `lab_dir` (`.lab/` by default): one folder per process with its
rendered config, log and pid file. Processes outlive the command that started them, so every
command finds them again through the pid files, and checks the PID still is that process.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis_ha
from redis_ha import conn
from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import view as viewmod
from redis_ha.cli.names import command
from redis_ha.control.base import starts_safely
from redis_ha.errors import HAError, LabError
from redis_ha.inventory import LOOPBACK, Endpoint, Inventory
from redis_ha.lab import binaries as binmod
from redis_ha.lab import proxy
from redis_ha.render import listen, redis_conf, sentinel_conf, write_private

# Popen handles of processes this Python process started, so that dead children are reaped
# (a zombie still answers kill(pid, 0) and would look alive).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

PROXY = "partition-proxy"  # the process folder of the partition proxies (lab/proxy.py)


def require_lab(inv: Inventory) -> None:
    """Drills and fault injection act only on inventories marked `lab: true`."""
    if not inv.lab:
        raise LabError(
            f"{inv.path}: this inventory is not marked 'lab: true'; refusing to touch it", code=2
        )
    names = docker_lab_hosts(inv)
    for ep in inv.endpoints():
        if ep.host not in LOOPBACK and ep.host not in names:
            raise LabError(f"lab inventories must use loopback addresses; {ep.name} is {ep.host}")


def docker_lab_hosts(inv: Inventory) -> frozenset[str]:
    """The hosts a Docker lab may name: its own containers, on the network it created
    (`control.network`), each addressed by its node's name. Empty for any other inventory."""
    if inv.control.get("backend") != "docker" or not inv.control.get("network"):
        return frozenset()
    return frozenset(ep.name for ep in inv.endpoints())


def proc_state(pid: int) -> tuple[str | None, bytes]:
    """The kernel's state letter of `pid` (R, S, T, Z ...) and its command line; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None, b""
    return stat.rsplit(")", 1)[-1].split()[0], cmd


def pid_alive(pid: int) -> bool:
    """True when `pid` is a live (not zombie) redis process."""
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: poll() reaps it when dead, and is right even before exec().
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    state, cmd = proc_state(pid)
    # An exiting process frees its memory (and with it /proc/PID/cmdline) before it closes its
    # sockets: with a large dataset that takes long enough for a restart to find the port still
    # bound. An empty cmdline on a non-zombie is such a dying process: still alive.
    alive = state not in (None, "Z", "X")
    return alive and (b"redis" in cmd or b"valkey" in cmd or cmd == b"")


def partitionable(inv: Inventory) -> bool:
    """A lab whose nodes announce a proxy port: its links can be cut (lab/partition.py)."""
    return any(n.announce for n in inv.nodes)


def child_env() -> dict[str, str]:
    """This environment, with the folder `redis_ha` was imported from put on PYTHONPATH when the
    interpreter would not find it by itself (a checkout run uninstalled): a spawned
    `python -m redis_ha...` then runs this same code whatever its working folder. An installed
    package (site-packages) needs nothing added."""
    root = str(Path(redis_ha.__file__).resolve().parent.parent)
    env = dict(os.environ)
    if root not in {*site.getsitepackages(), site.getusersitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def pid_frozen(pid: int) -> bool:
    """True when the process is stopped (SIGSTOP), i.e. a hung node."""
    return proc_state(pid)[0] in ("T", "t")


def wait_port_free(ep: Endpoint, timeout: float = 30.0) -> None:
    """Wait until nothing listens on the endpoint's port any more.

    A killed redis-server's main thread can be gone (its PID a zombie) while its other threads
    still hold the listening socket, freeing memory (seconds per GB). Until they exit a connection
    is accepted and then reset, and a new process on that port fails to bind.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ep.host, ep.port), timeout=0.2):
                pass
        except OSError:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{ep.name}: port {ep.port} still in use after {timeout:.0f} s")
        time.sleep(0.02)


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)


class Lab:
    """One local cluster, described by a lab inventory."""

    def __init__(self, inv: Inventory, server: str | None = None) -> None:
        require_lab(inv)
        self.inv = inv
        self.dir = inv.lab_dir
        self.server = server  # redis | valkey | a folder; None: the setting (lab/binaries.py)

    def binaries(self) -> binmod.Binaries:
        """The server binaries to start processes with (a running lab keeps its own)."""
        return binmod.for_lab(self.inv, self.dir, self.server, running=bool(self.running()))

    # --- files ------------------------------------------------------------------------------
    def proc_dir(self, name: str) -> Path:
        return self.dir / name

    def pidfile(self, name: str) -> Path:
        return self.proc_dir(name) / "pid"

    def conf(self, name: str) -> Path:
        kind = "sentinel" if name in {s.name for s in self.inv.sentinels} else "redis"
        return self.proc_dir(name) / f"{kind}.conf"

    def log(self, name: str) -> Path:
        kind = "sentinel" if name in {s.name for s in self.inv.sentinels} else "redis"
        return self.proc_dir(name) / f"{kind}.log"

    @property
    def acl(self) -> bool:
        """The lab runs with the shipped ACL users (`lab.up --acl`, until `lab.down`)."""
        return (self.dir / "acl-on").exists()

    def ensure_password(self) -> str | None:
        """Create the lab password file on first use, unless the password comes from env."""
        a = self.inv.auth
        if a.password_env and os.environ.get(a.password_env):
            return os.environ[a.password_env]
        if a.password_file and not a.password_file.exists():
            write_private(a.password_file, secrets.token_urlsafe(18) + "\n")
        return self.inv.password()

    # --- processes ------------------------------------------------------------------------------
    def pid(self, name: str) -> int | None:
        """PID of the named process if it is running (frozen counts as running)."""
        try:
            pid = int(self.pidfile(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> dict[str, int]:
        names = [e.name for e in self.inv.endpoints()]
        return {n: p for n in names if (p := self.pid(n)) is not None}

    def spawn(self, name: str, argv: list[str], *, cwd: Path | None = None) -> int:
        """Start `argv` as the lab process `name`, detached; returns its PID at once.

        Its output goes to `<lab>/<name>/stdout.log` and its PID to `<lab>/<name>/pid`, so
        `pid(name)` finds it from any later command and `down()` stops it. It runs in its
        process folder unless `cwd` says otherwise, and can `python -m redis_ha...`.
        """
        d = self.proc_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        out = open(d / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            p = subprocess.Popen(
                argv,
                cwd=cwd or d,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
        _CHILDREN[p.pid] = p
        self.pidfile(name).write_text(f"{p.pid}\n")
        return p.pid

    def start_node(
        self,
        node: Endpoint,
        *,
        replicaof: Endpoint | None = None,
        fresh: bool = False,
        overrides: dict[str, str] | None = None,
        safe: bool | None = None,
        after_s: float = 0.0,
    ) -> int:
        """Start one redis-server; a fresh start renders its config, else the existing one is used.

        Without persistence every start is an empty node; `replicaof` overrides the file so a
        restarted node can rejoin as a replica of the current primary. `overrides` are passed as
        `--name value` arguments, so a setting holds from the first instant (replica-priority 0
        for a rebuilding replica) whatever the file says. `safe` starts it through
        redis_ha.safestart (None: as the inventory says, `control.starts_safely`). `after_s`
        starts it that many seconds from now, as a supervisor's restart delay does (systemd
        `RestartSec`), and returns at once (the PID is the one that will serve: exec, no fork).
        """
        bins = self.binaries()
        conf = self.conf(node.name)
        if fresh or not conf.exists():
            write_private(
                conf,
                redis_conf(
                    self.inv,
                    node,
                    data_dir=self.proc_dir(node.name),
                    replicaof=replicaof,
                    password=self.ensure_password(),
                    acl=self.acl,
                ),
            )
            argv = bins.server_argv(conf)
        else:
            argv = bins.server_argv(conf)
            if replicaof is not None:
                argv += ["--replicaof", replicaof.announced[0], str(replicaof.announced[1])]
        for key, value in (overrides or {}).items():
            argv += [f"--{key}", value]
        wait = 10.0
        if starts_safely(self.inv, node) if safe is None else safe:
            # Through redis_ha.safestart (same PID after exec): it may wait for a failover first.
            from redis_ha.safestart import wrap_argv

            argv, wait = wrap_argv(self.inv, node, argv), 60.0
        if after_s > 0:
            argv = ["/bin/sh", "-c", 'sleep "$0" && exec "$@"', f"{after_s:g}", *argv]
            return self.spawn(node.name, argv)
        pid = self.spawn(node.name, argv)
        self._wait_port(node, pid, timeout=wait)
        return pid

    def start_sentinel(self, s: Endpoint, *, primary: Endpoint, fresh: bool = False) -> int:
        conf = self.conf(s.name)
        if fresh or not conf.exists():
            text = sentinel_conf(
                self.inv,
                s,
                data_dir=self.proc_dir(s.name),
                primary=primary,
                password=self.ensure_password(),
                acl=self.acl,
            )
            write_private(conf, text)
        pid = self.spawn(s.name, self.binaries().sentinel_argv(conf))
        self._wait_port(s, pid)
        period = self.inv.lab_sentinel_info_period_ms
        if period is not None:  # not in sentinel.conf: set on every start
            import redis

            try:
                conn.call(self.inv, s, "SENTINEL", "DEBUG", "INFO-PERIOD", period)
            except (redis.ResponseError, HAError) as e:  # refused, or no answer (ClusterError)
                raise LabError(f"{s.name}: SENTINEL DEBUG INFO-PERIOD {period} failed: {e}") from e
        return pid

    def ensure_proxy(self, timeout: float = 10.0) -> int | None:
        """Start the partition proxies unless they run; None for a lab that is not partitionable.

        They start before the nodes: every link between nodes crosses them (lab/proxy.py).
        """
        if not partitionable(self.inv):
            return None
        pid = self.pid(PROXY)
        if pid is not None:
            return pid
        d = self.proc_dir(PROXY)
        d.mkdir(parents=True, exist_ok=True)
        pidfiles = {n.name: str(self.pidfile(n.name)) for n in self.inv.nodes}
        (d / "config.json").write_text(json.dumps(proxy.config(self.inv, pidfiles), indent=1))
        (d / "ready").unlink(missing_ok=True)
        pid = self.spawn(PROXY, [sys.executable, "-m", "redis_ha.lab.proxy", str(d)])
        deadline = time.monotonic() + timeout
        while not (d / "ready").exists():
            if not pid_alive(pid) or time.monotonic() > deadline:
                raise LabError(f"the partition proxy did not start: {self._log_tail(PROXY)}")
            time.sleep(0.02)
        return pid

    def _wait_port(self, ep: Endpoint, pid: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                tail = self._log_tail(ep.name)
                raise LabError(f"{ep.name} exited at start (port {ep.port} in use?). Log: {tail}")
            try:
                with socket.create_connection((ep.host, ep.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise LabError(f"{ep.name} did not open port {ep.port} within {timeout:.0f} s")

    def _log_tail(self, name: str) -> str:
        for p in (self.log(name), self.proc_dir(name) / "stdout.log"):
            try:
                lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
            except OSError:
                continue
            if lines:
                return lines[-1][-200:]
        return "(no log)"

    def signal(self, name: str, sig: int) -> int:
        """Send a signal to a running lab process; returns its PID."""
        pid = self.pid(name)
        if pid is None:
            raise LabError(f"{name} is not running")
        os.kill(pid, sig)
        return pid

    def stop(self, name: str, *, kill: bool = False, timeout: float = 5.0) -> bool:
        """Stop one process by PID (SIGCONT first: a frozen process cannot exit)."""
        pid = self.pid(name)
        if pid is None:
            return False
        for sig in (signal.SIGCONT, signal.SIGKILL if kill else signal.SIGTERM):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.02)
        self.pidfile(name).unlink(missing_ok=True)
        ep = self.inv.find(name)
        if ep is not None:
            wait_port_free(ep)  # "stopped" means nothing answers on its port any more
        return True

    # --- the whole lab ----------------------------------------------------------------------
    def current_primary(self) -> Endpoint:
        """The primary the Sentinels name, else the first node (a fresh lab)."""
        facts = factsmod.gather(self.inv, detail=False)
        addr, _ = healthmod.authoritative_primary(facts)
        if addr:
            host, _, port = addr.rpartition(":")
            node = self.inv.node_by_address(host, port)
            if node:
                return node
        claimed = facts.claimed_primaries()
        if len(claimed) == 1:
            return self.inv.node(claimed[0].name)
        return self.inv.nodes[0]

    def up(self, timeout: float = 30.0, *, acl: bool = False) -> UpResult:
        """Start whatever is not running; a running healthy lab is left untouched. `acl` starts
        a new lab with the shipped ACL users (inventories/acl/)."""
        bins = self.binaries()
        res = UpResult()
        self.dir.mkdir(parents=True, exist_ok=True)
        binmod.record(self.dir, bins)
        self.ensure_password()
        self.ensure_proxy()
        running = self.running()
        if self.inv.tls is not None:
            from redis_ha.lab.tls import ensure_ca  # a throwaway CA for this lab

            ensure_ca(self.inv.tls)
        if acl and not self.acl:
            if running:
                raise LabError(f"the lab runs without ACL users: {command('lab.down')} first")
            (self.dir / "acl-on").write_text("inventories/acl/*.acl\n")
        for pid in running.values():
            if pid_frozen(pid):
                os.kill(pid, signal.SIGCONT)  # a frozen process is a fault to undo, not a state
        fresh = not running
        primary = self.inv.nodes[0] if fresh else self.current_primary()
        for n in self.inv.nodes:
            if n.name in running:
                res.running.append(n.name)
                continue
            self.start_node(n, replicaof=None if n == primary else primary, fresh=fresh)
            res.started.append(n.name)
        for s in self.inv.sentinels:
            if s.name in running:
                res.running.append(s.name)
                continue
            self.start_sentinel(s, primary=primary, fresh=fresh)
            res.started.append(s.name)
        single = self.inv.single
        if single is not None:
            if single.name in running:
                res.running.append(single.name)
            else:
                self.start_single(fresh=fresh)
                res.started.append(single.name)
        self.wait_ready(timeout)
        from redis_ha.appconfig import write_lab_env  # the app's dotenv file, if absent

        write_lab_env(self.inv)
        return res

    def start_single(self, *, fresh: bool = False) -> int:
        """The legacy single instance the rollback runbook falls back to."""
        assert self.inv.single is not None
        s = self.inv.single
        conf = self.conf(s.name)
        if fresh or not conf.exists():
            pw = self.ensure_password()
            lines = [
                *listen(self.inv, s),
                f"bind {s.host}",
                "daemonize no",
                f'dir "{self.proc_dir(s.name)}"',
                f'logfile "{self.log(s.name)}"',
                'save ""',
                "appendonly no",
            ]
            if pw:
                lines.append(f'requirepass "{pw}"')
            write_private(conf, "\n".join(lines) + "\n")
        pid = self.spawn(s.name, self.binaries().server_argv(conf))
        self._wait_port(s, pid)
        return pid

    def wait_ready(self, timeout: float = 30.0) -> healthmod.Health:
        """Wait for a primary with every replica in sync and Sentinels that know each other."""
        return wait_ready(self.inv, timeout)

    def down(self) -> list[str]:
        """Stop every lab process by PID and remove the lab's state folder."""
        stopped = []
        names = [e.name for e in (*self.inv.sentinels, *self.inv.nodes)]
        if self.inv.single:
            names.append(self.inv.single.name)
        for name in names:
            if self.stop(name, kill=True):
                stopped.append(name)
        stopped += self._stop_strays()
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        return stopped

    def _stop_strays(self) -> list[str]:
        """Kill any other pid file's process under the lab folder (helpers, proxies, old names)."""
        found: list[str] = []
        if not self.dir.exists():
            return found
        for pf in self.dir.glob("*/pid"):
            try:
                pid = int(pf.read_text().strip())
            except (OSError, ValueError):
                continue
            if pid_alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
                found.append(pf.parent.name)
        return found


def wait_ready(inv: Inventory, timeout: float = 30.0) -> healthmod.Health:
    """Wait for a primary with every replica in sync and Sentinels that know each other."""
    deadline = time.monotonic() + timeout
    while True:
        v = viewmod.take(inv)
        f, last = v.facts, v.health
        n_s, n_r = len(inv.sentinels), len(inv.nodes) - 1
        known = all(
            s.up and s.num_other_sentinels == n_s - 1 and s.num_replicas == n_r for s in f.sentinels
        )
        if last.healthy and known:
            return last
        if time.monotonic() > deadline:
            why = "; ".join(last.problems) or "Sentinels have not discovered each other yet"
            raise LabError(f"lab not ready after {timeout:.0f} s: {why}")
        time.sleep(0.2)
