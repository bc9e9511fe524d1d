"""Load and validate an inventory: which cluster the runbooks act on.

An inventory names nodes by stable identities (`redis-1`, `sentinel-1`), never by role: roles are
discovered from the cluster at run time. Validation collects every problem with its YAML path and
reports them together, so a 3 a.m. operator fixes the file in one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redis_ha import control as controlmod
from redis_ha import paths
from redis_ha.errors import InventoryError

DEFAULT_INVENTORY = "inventories/lab.yaml"  # under paths.home(), else the one shipped
ENV_INVENTORY = "REDIS_HA_INVENTORY"
SERVER_KINDS = ("redis", "valkey")  # what `lab_server` may name besides a folder (lab/binaries.py)
APP_CONFIG_BACKENDS = ("envfile", "railway", "manual")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Endpoint:
    """One Redis node or Sentinel, by stable name."""

    name: str
    host: str
    port: int
    control: dict[str, Any] = field(default_factory=dict)
    # The address the cluster (Sentinels, replicas) uses for this node when it differs from the
    # one the tool uses (NAT, or the lab's partition proxies): `host:port`.
    announce: str | None = None
    # What the service is sized at, for `invoke cost` (memory_gb, vcpu, volume_gb; see cost.py).
    size: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def announced(self) -> tuple[str, int]:
        """(host, port) the cluster knows this node by: `announce` if set, else its address."""
        if self.announce:
            host, _, port = self.announce.rpartition(":")
            return host, int(port)
        return self.host, self.port


@dataclass(frozen=True)
class Settings:
    """Cluster settings the config renderer writes and `config.drift` checks."""

    quorum: int = 2
    down_after_ms: int = 3000
    failover_timeout_ms: int = 10000
    parallel_syncs: int = 1
    min_replicas_to_write: int = 1
    min_replicas_max_lag: int = 10
    persistence: bool = False
    # Diskless sync with no delay: there is no disk to write an RDB to (persistence is off), and
    # with two replicas and parallel-syncs 1 the default 5 s wait for more replicas to batch buys
    # nothing while it stretches every failover (measured: 6.3 s with 5, 2.2 s with 0).
    repl_diskless_sync: bool = True
    repl_diskless_sync_delay: int = 0
    replica_priority: int = 100
    maxmemory: str = "0"
    maxmemory_policy: str = "noeviction"


@dataclass(frozen=True)
class Auth:
    """Where the password comes from. The password itself never appears in the YAML."""

    password_env: str | None = None
    password_file: Path | None = None
    username: str | None = None  # an ACL user; None is the `default` user


@dataclass(frozen=True)
class Tls:
    """TLS for every node, Sentinel and replication link: file paths only, never their contents.

    One certificate and key serve the servers (rendered configs) and the tool as a client."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class Inventory:
    """A validated inventory. Paths are absolute (resolved against `paths.anchor` of the file)."""

    path: Path
    name: str
    master_name: str
    nodes: tuple[Endpoint, ...]
    sentinels: tuple[Endpoint, ...]
    settings: Settings
    auth: Auth
    lab: bool
    lab_dir: Path
    control: dict[str, Any]
    single: Endpoint | None = None
    tls: Tls | None = None
    app: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)  # plan, budget, egress: see cost.py
    lab_server: str | None = None  # redis, valkey, or a folder of binaries (lab/binaries.py)
    # A lab's Sentinels re-read replica INFO this often (SENTINEL DEBUG INFO-PERIOD; Sentinel's
    # own is 10 000 ms): test labs shorten it as they shorten down-after. Only the lab (which
    # refuses any inventory not marked lab) applies it; nothing else sends SENTINEL DEBUG.
    lab_sentinel_info_period_ms: int | None = None

    def node(self, name: str) -> Endpoint:
        """The Redis node called `name`, or a clear error listing the known ones."""
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise InventoryError(f"unknown node {name!r} (this inventory has: {known})")

    def sentinel(self, name: str) -> Endpoint:
        for s in self.sentinels:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sentinels)
        raise InventoryError(f"unknown sentinel {name!r} (this inventory has: {known})")

    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every process the inventory names: nodes, Sentinels, and the single instance."""
        return (*self.nodes, *self.sentinels, *((self.single,) if self.single else ()))

    def find(self, name: str) -> Endpoint | None:
        """Any endpoint by name (None when the inventory has no such name)."""
        return next((e for e in self.endpoints() if e.name == name), None)

    def node_by_address(self, host: str, port: int | str) -> Endpoint | None:
        """Map an address a Sentinel or replica reports back to a stable node name."""
        for n in self.nodes:
            if n.port == int(port) and same_host(n.host, host):
                return n
        for n in self.nodes:
            ahost, aport = n.announced
            if aport == int(port) and same_host(ahost, host):
                return n
        return None

    def name_of(self, address: str | None) -> str | None:
        """`host:port` -> node name, or the address itself when it is not in the inventory."""
        if not address:
            return None
        host, _, port = address.rpartition(":")
        node = self.node_by_address(host, port) if port.isdigit() else None
        return node.name if node else address

    def password(self) -> str | None:
        """The cluster password from the environment or the password file (None: no auth)."""
        a = self.auth
        if a.password_env and os.environ.get(a.password_env):
            return os.environ[a.password_env]
        if a.password_file:
            try:
                return a.password_file.read_text().strip() or None
            except OSError as e:
                env = f"${a.password_env} is not set and " if a.password_env else ""
                raise InventoryError(
                    f"{env}the password file {a.password_file} cannot be read ({e.strerror})"
                ) from None
        if a.password_env:
            raise InventoryError(f"the password variable ${a.password_env} is not set")
        return None

    def credential_source(self) -> str:
        """Where the tool's password comes from, for an operator to check (never the value)."""
        a = self.auth
        if a.username:
            user = f'as ACL user "{a.username}"'
        else:
            user = 'as ACL user "default" (the inventory names no other)'
        if a.password_env and os.environ.get(a.password_env):
            return f"the password in ${a.password_env}, {user}"
        if a.password_file:
            unset = f"${a.password_env} is not set, so " if a.password_env else ""
            return f"{unset}the password file {a.password_file}, {user}"
        if a.password_env:
            return f"${a.password_env} (not set), {user}"
        return "no password: the inventory sets neither auth.password_env nor auth.password_file"

    def secrets(self) -> list[str]:
        """Strings to redact from journals and output."""
        try:
            pw = self.password()
        except InventoryError:
            return []
        return [pw] if pw else []


def same_host(a: str, b: str) -> bool:
    """Host equality where every loopback spelling is the same host."""
    return a == b or (a in LOOPBACK and b in LOOPBACK)


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """The inventory to use: explicit path, else $REDIS_HA_INVENTORY, else the lab's.

    The lab's is `inventories/lab.yaml` in the home folder (the current one, or $REDIS_HA_HOME)
    when there is one, else the lab inventory shipped with the package.
    """
    chosen = path or os.environ.get(ENV_INVENTORY)
    if chosen:
        return Path(chosen)
    local = paths.home() / DEFAULT_INVENTORY
    return local if local.exists() else paths.shipped("inventories") / "lab.yaml"


def load(path: str | os.PathLike[str] | None = None) -> Inventory:
    """Read, validate and return an inventory; every problem is reported in one InventoryError."""
    p = resolve_path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InventoryError(f"{p}: inventory file not found") from None
    except OSError as e:
        raise InventoryError(f"{p}: cannot read inventory ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InventoryError(f"{p}{where}: invalid YAML: {problem}") from None
    return from_dict(data, p)


def from_dict(data: Any, path: Path) -> Inventory:
    """Validate already-parsed YAML; `path` anchors relative paths and error messages."""
    v = _Validator(path)
    inv = v.inventory(data)
    if v.problems or inv is None:
        lines = "\n  ".join(v.problems)
        raise InventoryError(f"{path}: invalid inventory ({len(v.problems)} problems):\n  {lines}")
    return inv


# --- validation -----------------------------------------------------------------------------

_TOP = {
    "name",
    "lab",
    "lab_dir",
    "lab_server",
    "lab_sentinel_info_period_ms",
    "master_name",
    "auth",
    "nodes",
    "sentinels",
    "settings",
    "control",
    "single",
    "app",
    "cost",
    "tls",
}
_TLS = {"ca_file", "cert_file", "key_file"}
_ENDPOINT = {"name", "host", "port", "control", "announce", "size"}
_AUTH = {"password_env", "password_file", "username"}
# `control.ssh` (redis_ha.control.ssh) and the kinds of its values.
SSH_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "user": str,
    "key_file": str,
    "agent": bool,
    "jump": str,
    "known_hosts": str,
    "accept_new_host_key": bool,
    "sudo": bool,
    "unit": str,
    "connect_timeout": (int, float),
    "command_timeout": (int, float),
    "start_timeout": (int, float),
    "stop_timeout": (int, float),
}
# `control.commands`: the operations of the ssh backend, and the placeholders each may use.
SSH_COMMANDS: dict[str, tuple[str, ...]] = {
    "start": ("name", "unit", "port", "args"),
    "start_safe": ("name", "unit", "port", "args"),
    "stop": ("name", "unit", "port"),
    "restart": ("name", "unit", "port", "args"),
    "is_running": ("name", "unit", "port"),
    "log": ("name", "unit", "port", "lines"),
    "mem_available": ("name", "unit", "port"),
}
_APP = {
    "config_backend",
    "environment",
    "env_file",
    "service",
    "health_url",
    "railway_bin",
    "redis_url",
    "restart_cmd",
}


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = paths.anchor(path)
        self.problems: list[str] = []

    def bad(self, where: str, msg: str) -> None:
        self.problems.append(f"{where}: {msg}")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.bad(where, f"must be a mapping, got {_kind(value)}")
            return {}
        for k in value:
            if k not in allowed:
                self.bad(
                    f"{where}.{k}" if where != "(top)" else str(k),
                    f"unknown field (expected one of: {', '.join(sorted(allowed))})",
                )
        return value

    def get(
        self,
        d: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        *,
        required: bool = False,
        default: Any = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        here = f"{where}.{key}" if where != "(top)" else key
        if key not in d or d[key] is None:
            if required:
                self.bad(here, "missing required field")
            return default
        value = d[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; never accept one for the other.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        elif int in kinds and not isinstance(value, bool) and isinstance(value, int):
            ok = True
        else:
            ok = isinstance(value, kinds)
        if not ok:
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.bad(here, f"must be {names}, got {_kind(value)} {value!r}")
            return default
        if check:
            msg = check(value)
            if msg:
                self.bad(here, msg)
                return default
        return value

    def endpoint(self, raw: Any, where: str) -> Endpoint | None:
        d = self.mapping(raw, where, _ENDPOINT)
        if not d:
            return None
        name = self.get(d, "name", where, str, required=True, check=_check_name)
        host = self.get(d, "host", where, str, required=True, check=_check_host)
        port = self.get(d, "port", where, int, required=True, check=_check_port)
        control = self.get(d, "control", where, dict, default={})
        self.control(control, f"{where}.control")
        announce = self.get(d, "announce", where, str, check=_check_hostport)
        size = self.get(d, "size", where, dict, default={})
        if name is None or host is None or port is None:
            return None
        return Endpoint(
            name=name,
            host=host,
            port=port,
            control=dict(control),
            announce=announce,
            size=dict(size),
        )

    def control(self, control: dict[str, Any], where: str) -> None:
        """A `control` mapping: its backend is a registered one (control/); its ssh options,
        commands, tunnel flag and Railway environment are of the right kinds."""
        backend = control.get("backend")
        if backend is not None and backend not in controlmod.names():
            self.bad(
                f"{where}.backend",
                f"must be one of {', '.join(controlmod.names())}, not {backend!r}",
            )
        self.get(control, "tunnel", where, bool)
        self.get(control, "environment", where, str, check=_check_host)
        ssh = self.get(control, "ssh", where, dict, default={})
        self.mapping(ssh, f"{where}.ssh", set(SSH_OPTIONS))
        for key, kind in SSH_OPTIONS.items():
            self.get(ssh, key, f"{where}.ssh", kind, check=_SSH_CHECKS.get(key))
        commands = self.get(control, "commands", where, dict, default={})
        self.mapping(commands, f"{where}.commands", set(SSH_COMMANDS))
        for key, fields in SSH_COMMANDS.items():
            self.get(commands, key, f"{where}.commands", str, check=_template_check(fields))

    def endpoints(self, d: dict[str, Any], key: str, count_hint: str) -> tuple[Endpoint, ...]:
        raw = self.get(d, key, "(top)", list, required=True, default=[])
        if raw == [] and key in d and d[key] is not None:
            self.bad(key, f"must list at least one entry ({count_hint})")
        return tuple(ep for i, item in enumerate(raw) if (ep := self.endpoint(item, f"{key}[{i}]")))

    def settings(self, raw: Any) -> Settings:
        defaults = Settings()
        allowed = set(defaults.__dataclass_fields__)
        d = self.mapping(raw, "settings", allowed) if raw is not None else {}
        values: dict[str, Any] = {}
        for key in defaults.__dataclass_fields__:
            default = getattr(defaults, key)
            kind: type = type(default)
            check: Callable[[Any], str | None] | None = _check_nonneg if kind is int else None
            if key == "maxmemory":
                check = _check_memory
            values[key] = self.get(d, key, "settings", kind, default=default, check=check)
        s = Settings(**values)
        if s.quorum < 1:
            self.bad("settings.quorum", "must be at least 1")
        return s

    def auth(self, raw: Any) -> Auth:
        if raw is None:
            return Auth()
        d = self.mapping(raw, "auth", _AUTH | {"password"})
        if "password" in d:
            self.bad(
                "auth.password",
                "passwords are never written in the inventory; use password_env or password_file",
            )
        env = self.get(d, "password_env", "auth", str)
        file = self.get(d, "password_file", "auth", str)
        user = self.get(d, "username", "auth", str, check=_check_name)
        return Auth(
            password_env=env,
            password_file=(self.base / file).resolve() if file else None,
            username=user,
        )

    def tls(self, raw: Any) -> Tls | None:
        if raw is None:
            return None
        d = self.mapping(raw, "tls", _TLS)
        files = {k: self.get(d, k, "tls", str, required=True) for k in sorted(_TLS)}
        if any(v is None for v in files.values()):
            return None
        return Tls(**{k: (self.base / v).resolve() for k, v in files.items()})

    def inventory(self, data: Any) -> Inventory | None:
        if data is None:
            self.bad("(top)", "the file is empty")
            return None
        d = self.mapping(data, "(top)", _TOP)
        if not d:
            return None
        lab = self.get(d, "lab", "(top)", bool, required=True, default=False)
        master = self.get(d, "master_name", "(top)", str, required=True, check=_check_master)
        nodes = self.endpoints(d, "nodes", "the Redis nodes")
        sentinels = self.endpoints(d, "sentinels", "the Sentinels")
        settings = self.settings(d.get("settings"))
        auth = self.auth(d.get("auth"))
        tls = self.tls(d.get("tls"))
        name = self.get(d, "name", "(top)", str, default=self.path.stem, check=_check_name)
        lab_dir_raw = self.get(d, "lab_dir", "(top)", str, default="../.lab")
        lab_server = self.get(d, "lab_server", "(top)", str, check=_check_server)
        if lab_server and lab_server not in SERVER_KINDS:
            lab_server = str((self.base / lab_server).resolve())  # a folder, like lab_dir
        info_period = self.get(d, "lab_sentinel_info_period_ms", "(top)", int)
        if info_period is not None and not 100 <= info_period <= 60000:  # only the lab uses it
            self.bad("lab_sentinel_info_period_ms", "must be between 100 and 60000 ms")
        control = self.get(d, "control", "(top)", dict, default={"backend": "lab"})
        self.control(control, "control")
        single = None
        if d.get("single") is not None:
            single = self.endpoint(d["single"], "single")
        app = self.get(d, "app", "(top)", dict, default={})
        cost = self.get(d, "cost", "(top)", dict, default={})
        if app:
            self.mapping(app, "app", _APP)
            cb = app.get("config_backend")
            if cb is not None and cb not in APP_CONFIG_BACKENDS:
                self.bad("app.config_backend", f"must be one of {', '.join(APP_CONFIG_BACKENDS)}")
            if isinstance(app.get("env_file"), str) and app["env_file"]:  # anchored like the rest
                app = {**app, "env_file": str((self.base / app["env_file"]).resolve())}

        seen: dict[str, str] = {}
        addrs: dict[tuple[str, int], str] = {}
        all_eps = [("nodes", i, e) for i, e in enumerate(nodes)]
        all_eps += [("sentinels", i, e) for i, e in enumerate(sentinels)]
        if single:
            all_eps.append(("single", -1, single))
        for key, i, ep in all_eps:
            where = f"{key}[{i}]" if i >= 0 else key
            if ep.name in seen:
                self.bad(f"{where}.name", f"duplicate name {ep.name!r} (also {seen[ep.name]})")
            seen.setdefault(ep.name, where)
            if (ep.host, ep.port) in addrs:
                self.bad(f"{where}.port", f"{ep.address} is also used by {addrs[ep.host, ep.port]}")
            addrs.setdefault((ep.host, ep.port), ep.name)
        if sentinels and settings.quorum > len(sentinels):
            self.bad(
                "settings.quorum",
                f"quorum {settings.quorum} exceeds the {len(sentinels)} Sentinels listed",
            )
        if nodes and settings.min_replicas_to_write > len(nodes) - 1:
            self.bad(
                "settings.min_replicas_to_write",
                f"{settings.min_replicas_to_write} replicas required but only "
                f"{len(nodes) - 1} can exist",
            )
        if self.problems or master is None:
            return None
        return Inventory(
            path=self.path.resolve(),
            name=name,
            master_name=master,
            nodes=nodes,
            sentinels=sentinels,
            settings=settings,
            auth=auth,
            lab=bool(lab),
            lab_dir=(self.base / lab_dir_raw).resolve(),
            control=dict(control),
            single=single,
            app=dict(app),
            cost=dict(cost),
            lab_server=lab_server,
            lab_sentinel_info_period_ms=info_period,
            tls=tls,
        )


_TYPE_NAMES: dict[type, str] = {
    int: "an integer",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _check_name(v: str) -> str | None:
    if not NAME_RE.match(v):
        return f"{v!r} is not a valid name (lowercase letters, digits and '-')"
    return None


def _check_master(v: str) -> str | None:
    if not re.match(r"^[A-Za-z0-9._-]+$", v):
        return f"{v!r} is not a valid Sentinel master name"
    return None


def _check_host(v: str) -> str | None:
    if not v or any(c.isspace() for c in v):
        return f"{v!r} is not a valid host"
    return None


def _check_hostport(v: str) -> str | None:
    host, _, port = v.rpartition(":")
    if not host or not port.isdigit() or _check_host(host) or _check_port(int(port)):
        return f"{v!r} is not host:port"
    return None


def _check_port(v: int) -> str | None:
    if not 1 <= v <= 65535:
        return f"{v} is not a valid port (1-65535)"
    return None


def hostspec(v: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (a jump host) -> (user, host, port); a bad one raises ValueError."""
    user, _, rest = v.rpartition("@")
    host, sep, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if _check_host(host) or (sep and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise ValueError(f"{v!r} is not [user@]host[:port]")
    return user or None, host, int(port) if port else None


def _check_hostspec(v: str) -> str | None:
    try:
        hostspec(v)
    except ValueError as e:
        return str(e)
    return None


def _check_positive(v: float) -> str | None:
    return None if v > 0 else f"must be more than 0 seconds, got {v}"


_SSH_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "host": _check_host,
    "port": _check_port,
    "jump": _check_hostspec,
    "connect_timeout": _check_positive,
    "command_timeout": _check_positive,
    "start_timeout": _check_positive,
    "stop_timeout": _check_positive,
}


def _template_check(fields: tuple[str, ...]) -> Callable[[str], str | None]:
    """A command template may use only these `{placeholders}` (literal braces doubled)."""

    def check(v: str) -> str | None:
        try:
            v.format(**{f: "" for f in fields})
        except KeyError as e:
            return f"unknown placeholder {{{e.args[0]}}} (known here: {', '.join(fields)})"
        except (ValueError, IndexError) as e:
            return f"{v!r} is not a command template ({e}; write literal braces as {{{{ }}}})"
        return None

    return check


def _check_server(v: str) -> str | None:
    if v in SERVER_KINDS or (v.strip() and "/" in v):
        return None
    return f"{v!r} is not {' or '.join(SERVER_KINDS)} nor a folder path"


def _check_nonneg(v: int) -> str | None:
    return None if v >= 0 else f"must not be negative, got {v}"


def _check_memory(v: str) -> str | None:
    if not re.match(r"^\d+(b|k|kb|m|mb|g|gb)?$", v.lower()):
        return f"{v!r} is not a memory size like 256mb"
    return None
