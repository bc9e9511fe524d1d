"""Where the app reads its Redis settings from, and how to change them: the rollback's lever.

The app (the web backend's session cache) finds Redis through a few environment variables, agreed
with the app simulator (`redis_ha.client`):

- Sentinel discovery: `REDIS_SENTINELS=host:port,host:port,...` and `REDIS_SENTINEL_MASTER=name`
- single instance:     `REDIS_URL=redis://host:port/0`
- either mode:         `REDIS_PASSWORD_FILE=path` (the password itself is never in the config)

A backend (inventory `app.config_backend`) reads and changes those variables and redeploys the
app: `envfile` (a dotenv file, lab and VMs), `railway` (the Railway CLI), `manual` (an operator
does it by hand, guided). Every change first saves what it replaces, so a failed rollback puts
the old configuration back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from redis_ha.cli.names import command
from redis_ha.errors import HAError, InventoryError
from redis_ha.inventory import Inventory
from redis_ha.journal import REDACTED, redact

VAR_URL = "REDIS_URL"
VAR_SENTINELS = "REDIS_SENTINELS"
VAR_MASTER = "REDIS_SENTINEL_MASTER"
VAR_PASSWORD_FILE = "REDIS_PASSWORD_FILE"
SINGLE, SENTINEL = "single", "sentinel"
MODES = (SINGLE, SENTINEL)


class AppConfigError(HAError):
    """The app configuration cannot be read, changed or redeployed."""


class Backend(Protocol):
    """What the rollback needs from an app config backend."""

    name: str

    def where(self) -> str:
        """Where the configuration lives, for messages ("env file /x/app.env")."""
        ...

    def read(self) -> dict[str, str] | None:
        """Current values of the app's variables; None when they cannot be read (manual)."""
        ...

    def apply(
        self,
        changes: dict[str, str | None],
        backup_dir: Path,
        previous: dict[str, str | None] | None = None,
        key: str | None = None,
    ) -> Path:
        """Save what is replaced (`previous` when unreadable) in a private file, then change.

        `key` (the run's id) names the backup: one already saved under it is kept, so a run
        resumed after its change saves nothing over the configuration it replaced.
        """
        ...

    def restore(self, backup: Path) -> None:
        """Put back what `apply` saved."""
        ...

    def redeploy(self) -> str:
        """Make the app pick the configuration up; returns one line saying what was done."""
        ...


def single_url(inv: Inventory) -> str:
    """REDIS_URL for the single instance: `app.redis_url` if given, else built from `single`."""
    url = inv.app.get("redis_url")
    if url is None:
        if inv.single is None:
            raise InventoryError(f"{inv.path}: no 'single' instance to roll back to")
        host = f"[{inv.single.host}]" if ":" in inv.single.host else inv.single.host
        url = f"redis://{host}:{inv.single.port}/0"
    if not isinstance(url, str):
        raise InventoryError(f"{inv.path}: app.redis_url must be a string")
    if "${{" not in url and urlsplit(url).password:
        raise InventoryError(
            f"{inv.path}: app.redis_url carries a password; use REDIS_PASSWORD_FILE or a Railway "
            "variable reference such as ${{legacy.REDIS_URL}} instead"
        )
    return url


def target_vars(inv: Inventory, mode: str) -> dict[str, str | None]:
    """The variable changes that put the app in `mode` (None: remove the variable)."""
    if mode == SINGLE:
        return {VAR_URL: single_url(inv), VAR_SENTINELS: None, VAR_MASTER: None}
    if mode == SENTINEL:
        sentinels = ",".join(s.address for s in inv.sentinels)
        return {VAR_SENTINELS: sentinels, VAR_MASTER: inv.master_name, VAR_URL: None}
    raise ValueError(f"unknown mode {mode!r}")


def shown(changes: dict[str, str | None], secrets: list[str]) -> list[str]:
    """The changes as an operator may see them: `set K=V` or `unset K`, never a secret (a URL's
    password and every secret of the inventory are masked, as the journal masks them)."""
    out = []
    for k, v in changes.items():
        if v is None:
            out.append(f"unset {k}")
            continue
        if "${{" not in v and "://" in v:
            pw = urlsplit(v).password
            if pw:
                v = v.replace(f":{pw}@", f":{REDACTED}@")
        out.append(f"set {k}={redact(v, secrets)}")
    return out


def mode_of(values: dict[str, str]) -> str | None:
    """Which mode a set of variables selects (Sentinel discovery wins, as in the app)."""
    if values.get(VAR_SENTINELS):
        return SENTINEL
    if values.get(VAR_URL):
        return SINGLE
    return None


def env_file(inv: Inventory) -> Path:
    """The app's dotenv file, resolved against the inventory's folder."""
    raw = inv.app.get("env_file")
    if not raw:
        raise InventoryError(f"{inv.path}: app.env_file is required for the envfile backend")
    p = Path(str(raw))
    return p if p.is_absolute() else (inv.path.parent / p).resolve()


def backend_for(
    inv: Inventory, *, yes: bool = False, confirm: Callable[[str], bool] | None = None
) -> Backend:
    """The backend the inventory names (`app.config_backend`, default envfile)."""
    name = inv.app.get("config_backend", "envfile")
    if name == "envfile":
        from redis_ha.appconfig.envfile import EnvFileBackend

        restart = inv.app.get("restart_cmd")
        return EnvFileBackend(env_file(inv), str(restart) if restart else None)
    if name == "railway":
        from redis_ha.appconfig.railway import RailwayBackend

        service = inv.app.get("service")
        if not service:
            raise InventoryError(f"{inv.path}: app.service is required for the railway backend")
        return RailwayBackend(
            str(service),
            binary=str(inv.app.get("railway_bin", "railway")),
            environment=inv.app.get("environment") or inv.control.get("environment"),
        )
    if name == "manual":
        from redis_ha.appconfig.manual import ManualBackend

        return ManualBackend(yes=yes, confirm=confirm)
    raise InventoryError(f"{inv.path}: unknown app.config_backend {name!r}")


def lab_env_text(inv: Inventory) -> str:
    """The lab app's dotenv file, in Sentinel discovery mode."""
    lines = [
        f"# The lab app's Redis settings (written by `{command('lab.up')}`; "
        f"`{command('rollback')}` edits it).",
        "# The password is never in this file: the app reads REDIS_PASSWORD_FILE.",
    ]
    for k, v in target_vars(inv, SENTINEL).items():
        if v is not None:
            lines.append(f"{k}={v}")
    if inv.auth.password_file:
        lines.append(f"{VAR_PASSWORD_FILE}={inv.auth.password_file}")
    if inv.tls is not None:  # the app verifies the lab's CA (no client certificate needed)
        lines.append(f"REDIS_TLS_CA_FILE={inv.tls.ca_file}")
    return "\n".join(lines) + "\n"


def write_lab_env(inv: Inventory) -> Path | None:
    """Create the lab app's env file if the inventory names one and it does not exist yet."""
    if inv.app.get("config_backend", "envfile") != "envfile" or not inv.app.get("env_file"):
        return None
    from redis_ha.appconfig.envfile import atomic_write

    path = env_file(inv)
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lab_env_text(inv), mode=0o600)
    return path


def write_backup(
    backup_dir: Path,
    label: str,
    old: dict[str, str],
    absent: list[str],
    key: str | None = None,
) -> Path:
    """Save replaced values into a private (0600) JSON file; they may hold secrets. Under a
    `key` (a run's id) the file is written once: a resumed run keeps what it saved before."""
    from redis_ha.appconfig.envfile import atomic_write

    if key is not None:
        path = backup_dir / f"app-config-{label}-{key}.json"
        if path.exists():
            return path
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = backup_dir / f"app-config-{label}-{stamp}.json"
        n = 1
        while path.exists():
            n += 1
            path = backup_dir / f"app-config-{label}-{stamp}-{n}.json"
    text = json.dumps({"set": old, "absent": absent}, indent=2) + "\n"
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text, mode=0o600)
    except OSError as e:
        raise AppConfigError(
            f"{path}: cannot save the app config backup ({e.strerror}); nothing changed"
        ) from None
    return path


def read_backup(path: Path) -> dict[str, str | None]:
    """The changes that restore a backup written by `write_backup`."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise AppConfigError(f"{path}: cannot read the app config backup ({e})") from None
    changes: dict[str, str | None] = dict(data.get("set", {}))
    changes.update({k: None for k in data.get("absent", [])})
    return changes
