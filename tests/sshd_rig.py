"""A throwaway OpenSSH server on 127.0.0.1 for the ssh backend's tests, and lab inventories whose
nodes it controls.

`sshd -D` runs as root on a free port with a host key and a user key made for the test in its
own folder; it is stopped by PID. The inventories' commands drive the lab's redis-server
processes on "the remote host" (this machine) through that server: the same config files, pid
files and logs as the lab, so `Lab.down()` still cleans up whatever they started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from redis_ha.lab.ports import free_ports

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    port: int
    dir: Path
    key: Path  # the user's private key (authorized)
    known_hosts: Path  # holds this server's host key
    log: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)

    def ssh_options(self, **extra: Any) -> dict[str, Any]:
        """`control.ssh` for nodes on this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "key_file": str(self.key),
            "known_hosts": str(self.known_hosts),
            "connect_timeout": 5,
            **extra,
        }


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def require_sshd() -> None:
    """Skip loudly where no OpenSSH server can run (no binary, or not root)."""
    if not os.path.exists(SSHD) or not shutil.which("ssh-keygen"):
        pytest.skip(f"ssh backend tests need OpenSSH's {SSHD} (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("ssh backend tests run sshd as root (to log in as root): run them as root")


@contextmanager
def sshd(tmp: Path) -> Iterator[Sshd]:
    """Start sshd on 127.0.0.1 on a free port; stop it by PID afterwards."""
    require_sshd()
    d = tmp / "sshd"
    d.mkdir(parents=True)
    keygen(d / "host_ed25519")
    keygen(d / "user_ed25519")
    (d / "authorized_keys").write_text((d / "user_ed25519.pub").read_text())
    port = free_ports(1)[0]
    host_pub = (d / "host_ed25519.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (d / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {d / 'host_ed25519'}",
                f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowTcpForwarding yes",
                "MaxSessions 100",
                "MaxStartups 100",
                "LogLevel DEBUG1",  # logs every direct-tcpip channel (the tunnel test reads it)
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
    log = d / "sshd.log"
    proc = subprocess.Popen(
        [SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Sshd(port, d, d / "user_ed25519", d / "known_hosts", log, proc)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {log.read_text()[-500:]}") from None
                time.sleep(0.02)
        yield server
    finally:
        server.stop()


def lab_commands(lab_dir: Path, inventory_path: Path) -> dict[str, str]:
    """`control.commands` that run the lab's redis-server processes through a shell on the
    ssh server (this machine): daemonized, with the lab's config, pid file and log."""
    d = f"{lab_dir}/{{name}}"
    server = f"redis-server redis.conf --daemonize yes --pidfile {d}/pid {{args}}"
    wrapper = (
        f"{sys.executable} -m redis_ha.safestart --inventory {inventory_path} --node {{name}} --"
    )
    return {
        "start": f"cd {d} && {server}",
        "start_safe": f"cd {d} && {wrapper} {server}",
        "stop": f"kill $(cat {d}/pid)",
        # A killed child of the test process stays a zombie until reaped: not running.
        "is_running": (
            f"p=$(cat {d}/pid 2>/dev/null) && [ -r /proc/$p/stat ] "
            "&& ! grep -q '^[0-9]* ([^)]*) [ZX]' /proc/$p/stat"
        ),
        "log": f"tail -n {{lines}} {d}/redis.log",
    }


def sentinel_log_command(lab_dir: Path) -> dict[str, str]:
    return {"log": f"tail -n {{lines}} {lab_dir}/{{name}}/sentinel.log"}
