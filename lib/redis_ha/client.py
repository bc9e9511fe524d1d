"""The Redis client settings this project recommends to apps, as a small helper module.

Why not plain `Sentinel(...).master_for(name)`? Measured on the lab (see the README), redis-py's
stock Sentinel client turns every failover into seconds of failed requests:

* `NOREPLICAS` from an old primary that lost its replica (min-replicas-to-write 1) is a plain
  `ResponseError`: redis-py neither retries it nor asks the Sentinels again, so writes keep failing
  until the connection happens to break.
* `READONLY` does make redis-py drop the connection (`SentinelManagedConnection` turns it into
  "The previous master is now a slave"), but with no retries the request fails anyway, and the
  next connection is often sent to the same old primary again, because:
* It discovers the primary with `SENTINEL MASTERS` from the first Sentinel that answers, and the
  Sentinel that led a failover reports the new address last (only at `+failover-end`, ~1 s after
  the others).
* The default `Retry` is three quick attempts: a few milliseconds, far shorter than a switchover.

The recommended client is still a `redis.Redis` (a thin subclass; apps keep their code), built on
redis-py's own `SentinelConnectionPool`, with these changes:

1. Retries with exponential backoff and jitter within a time budget (`retry_budget_s`, default
   5 s, counted from the moment the command is called, reconnects included) instead of a count,
   so a planned switchover becomes latency, not errors. Measured on the lab: the Sentinels name
   the promoted replica ~1 s after the promotion (the leader's INFO poll), so a careful switchover
   stalls requests for 1.2-1.4 s, once 2.8 s. A request that still fails after the budget raises,
   so the app never hangs for long.
2. Rediscovery on `READONLY`, `NOREPLICAS`, `MASTERDOWN` and `LOADING` as well as on connection
   errors: the connection is dropped and the next attempt asks the Sentinels again. Each of these
   replies means the command was *not* executed, so retrying it is safe.
3. Discovery with `SENTINEL GET-MASTER-ADDR-BY-NAME`, accepting an address only when a majority
   of the listed Sentinels report it (a lone Sentinel cut off with a stale primary cannot send the
   app to the wrong side of a partition).
4. A `ROLE` check on every new connection: a node that is no longer primary is never used, even
   for reads.

What no client setting fixes: a plain `SENTINEL FAILOVER` without pausing writes first still
loses acknowledged writes (the old primary keeps acknowledging until Sentinel demotes it, and a
retrying client even hides that as a perfect run). Only the careful procedure (failover.manual)
fixes that.

Timeouts: `socket_timeout` 1 s (a frozen primary costs one second per attempt, not forever),
`socket_connect_timeout` 0.5 s, Sentinel queries 0.3 s each.

Retrying is safe for idempotent commands (GET, SET, DEL, EXPIRE, HSET of fixed values ...). A
command that times out *may* have run; do not retry non-idempotent commands (INCR, LPUSH) blindly:
pass `retry_budget_s=0` for a client used for those.

Configuration from the environment (12-factor; the rollback procedure rewrites these)
-----------------------------------------------------------------------------------
``from_env(env)`` reads, in order of precedence:

``REDIS_SENTINELS``
    Comma-separated ``host:port`` list of Sentinels, e.g. ``10.0.0.1:26379,10.0.0.2:26379``.
    When set (non-empty), the app uses Sentinel discovery and needs:
``REDIS_SENTINEL_MASTER``
    The Sentinel master name (e.g. ``mymaster``).
``REDIS_URL``
    Used only when ``REDIS_SENTINELS`` is unset or empty: one fixed server,
    ``redis://[:password@]host:port/db`` (the single-instance rollback target).
``REDIS_PASSWORD_FILE``
    Path of a file holding the password (preferred: the password is not in the environment).
``REDIS_PASSWORD``
    The password itself (fallback when no file is given). A password in ``REDIS_URL`` wins over
    both for the URL mode. The same password is used for the Sentinels and the data nodes.
``REDIS_TLS_CA_FILE``
    When set, every connection (Sentinels and data nodes) is TLS, verified against this CA;
    ``REDIS_TLS_CERT_FILE`` and ``REDIS_TLS_KEY_FILE`` add a client certificate.

The file form (`.env`/dotenv, read exactly as python-dotenv reads it: ``KEY=value`` lines,
``#`` comments, optional ``export``, quotes, ``${VAR}`` expansion) is read with `read_env_file`.
Example for the lab::

    REDIS_SENTINELS=127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381
    REDIS_SENTINEL_MASTER=mymaster
    REDIS_PASSWORD_FILE=/path/to/password

Usage::

    from redis_ha.client import from_env
    r = from_env(os.environ)          # a redis.Redis; use it as usual
    r.set("session:42", payload, ex=3600)
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis
from redis.backoff import AbstractBackoff, ExponentialWithJitterBackoff, NoBackoff
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
)

from redis_ha.errors import HAError

T = TypeVar("T")


ENV_SENTINELS = "REDIS_SENTINELS"
ENV_MASTER = "REDIS_SENTINEL_MASTER"
ENV_URL = "REDIS_URL"
ENV_PASSWORD_FILE = "REDIS_PASSWORD_FILE"
ENV_PASSWORD = "REDIS_PASSWORD"
ENV_TLS = {"ssl_ca_certs": "REDIS_TLS_CA_FILE", "ssl_certfile": "REDIS_TLS_CERT_FILE",
           "ssl_keyfile": "REDIS_TLS_KEY_FILE"}  # fmt: skip

# Error replies after which the command was not executed and the primary may have moved.
REDISCOVER_CODES = ("READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING")

SOCKET_TIMEOUT = 1.0
CONNECT_TIMEOUT = 0.5
SENTINEL_TIMEOUT = 0.3
RETRY_BUDGET_S = 5.0


class ClientConfigError(HAError):
    """The app's Redis settings (env file / variables) are incomplete or malformed."""


class PrimaryMoved(RedisConnectionError):
    """The node answered with an error that means 'ask the Sentinels again' (see REDISCOVER_CODES).

    A ConnectionError subclass so that redis-py's retry machinery drops the connection and retries.
    `code` keeps the original reply code (e.g. NOREPLICAS) for error accounting.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}".strip())
        self.code = code


class BudgetRetry(Retry):
    """Retry connection errors with backoff until a time budget is spent (not a fixed count).

    Nested calls (redis-py retries the connect inside the command retry) share the outer deadline,
    so a request never takes much longer than the budget plus one socket timeout.
    """

    _local = threading.local()

    def __init__(self, budget_s: float = RETRY_BUDGET_S, backoff: AbstractBackoff | None = None):
        super().__init__(
            backoff or ExponentialWithJitterBackoff(base=0.01, cap=0.25),
            retries=1_000_000 if budget_s > 0 else 0,
            supported_errors=(RedisConnectionError, RedisTimeoutError, OSError),
        )
        self.budget_s = budget_s

    def call_with_retry(  # type: ignore[override]
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        outer = getattr(self._local, "deadline", None)
        deadline = outer if outer is not None else time.monotonic() + self.budget_s
        self._local.deadline = deadline
        try:
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if is_retryable and not is_retryable(error):
                        raise
                    failures += 1
                    if with_failure_count:
                        fail(error, failures)
                    else:
                        fail(error)
                    # The whole budget is used: the last attempt is made at the deadline
                    # rather than giving up early because the next backoff would overrun it.
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise error
                    time.sleep(min(self._backoff.compute(failures), remaining))
        finally:
            if outer is None:
                self._local.deadline = None


class HARedis(redis.Redis):
    """redis.Redis whose commands share one retry deadline from the moment they are called.

    redis-py connects a pooled connection before its command retry starts; without this, a slow
    reconnect and the command's retries would each get a full budget.
    """

    def execute_command(self, *args: Any, **options: Any) -> Any:
        retry = self.connection_pool.connection_kwargs.get("retry")
        local = BudgetRetry._local
        if not isinstance(retry, BudgetRetry) or getattr(local, "deadline", None) is not None:
            return super().execute_command(*args, **options)
        local.deadline = time.monotonic() + retry.budget_s
        try:
            return super().execute_command(*args, **options)
        finally:
            local.deadline = None


class HAConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that rediscovers on more replies and checks ROLE on connect."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # redis-py 8.1 reconnects a dropped connection inside a retry with connect_check_health(),
        # which reuses the old host and port: without this, every retry of a request goes back to
        # the demoted primary. connect() asks the Sentinels again (and checks ROLE).
        if not self._sock:
            self.connect()
        super().send_packed_command(command, check_health)

    def connect_to(self, address: tuple[str, int]) -> None:
        super().connect_to(address)
        if not self.connection_pool.is_master:
            return
        self.send_command("ROLE")
        role = self.read_response()
        name = role[0] if isinstance(role, (list, tuple)) and role else role
        if isinstance(name, bytes):
            name = name.decode()
        if name != "master":
            self.disconnect()
            raise PrimaryMoved("READONLY", f"{address[0]}:{address[1]} is a {name}, not primary")

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except ResponseError as e:
            code = str(getattr(e, "status_code", "") or str(e).split(" ", 1)[0])
            text = str(e)
            if not code or code not in REDISCOVER_CODES:
                # redis-py strips known codes from the message; unknown ones stay in it.
                first = text.split(" ", 1)[0]
                code = first if first in REDISCOVER_CODES else code
            if self.connection_pool.is_master and code in REDISCOVER_CODES:
                self.disconnect()
                raise PrimaryMoved(code, text.removeprefix(code).strip()) from e
            raise


class HASSLConnection(HAConnection, SSLConnection):
    """HAConnection over TLS (as redis-py's SentinelManagedSSLConnection is over its own)."""


class MajoritySentinel(Sentinel):
    """Discover the primary as the address a majority of the listed Sentinels report."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        need = len(self.sentinels) // 2 + 1
        votes: Counter[tuple[str, int]] = Counter()
        errors: list[str] = []
        order = list(self.sentinels)
        random.shuffle(order)  # spread discovery load; the majority rule makes order irrelevant
        for s in order:
            try:
                addr = s.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", service_name)
            except (RedisConnectionError, RedisTimeoutError, ResponseError) as e:
                kw = s.connection_pool.connection_kwargs
                errors.append(f"{kw.get('host')}:{kw.get('port')}: {e}")
                continue
            if not addr:
                continue
            host, port = addr[0], addr[1]
            if isinstance(host, bytes):
                host = host.decode()
            key = (str(host), int(port))
            votes[key] += 1
            if votes[key] >= need:
                return key
        seen = ", ".join(f"{h}:{p} x{n}" for (h, p), n in votes.items()) or "none"
        detail = f"; errors: {'; '.join(errors)}" if errors else ""
        raise MasterNotFoundError(
            f"no primary for {service_name!r} reported by a majority ({need} of "
            f"{len(self.sentinels)}) of Sentinels (answers: {seen}){detail}"
        )


@dataclass(frozen=True)
class AppConfig:
    """Where the app finds Redis: Sentinels + master name, or one fixed URL."""

    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    url: str | None = None
    password: str | None = None
    tls: tuple[tuple[str, str], ...] = ()  # redis-py ssl_* arguments (file paths), () for plain

    def ssl_kwargs(self) -> dict[str, Any]:
        """redis-py's TLS arguments for every connection ({} without TLS)."""
        return {"ssl": True, **dict(self.tls)} if self.tls else {}

    def url_tls(self) -> dict[str, Any]:
        """The same for a URL client (a `redis://` URL names no TLS: the class says it)."""
        return {"connection_class": SSLConnection, **dict(self.tls)} if self.tls else {}

    @property
    def mode(self) -> str:
        return "sentinel" if self.sentinels else "url"

    def hosts(self) -> list[str]:
        if self.sentinels:
            return [h for h, _ in self.sentinels]
        return [urlparse(self.url or "").hostname or ""]

    def describe(self) -> str:
        """One line without the password."""
        if self.sentinels:
            addrs = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"sentinel {self.master} via {addrs}"
        u = urlparse(self.url or "")
        return f"url redis://{u.hostname}:{u.port or 6379}{u.path or ''}"

    def server_kwargs(self) -> dict[str, Any]:
        """host, port, db, username and password of the server this config reaches, read as the
        app's client reads them (redis-py's `parse_url`: a password in REDIS_URL wins). For a
        Sentinel config host and port are only defaults: the Sentinels name the primary."""
        kw: dict[str, Any] = {"host": "localhost", "port": 6379, "db": 0, "username": None}
        kw["password"] = self.password
        if self.url:
            parsed = parse_url(self.url)
            kw.update({k: parsed[k] for k in list(kw) if k in parsed})
        return kw


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClientConfigError(f"{what}: {text.strip()!r} is not host:port")
    return host.strip("[]"), int(port)


def config_from_env(env: Mapping[str, str]) -> AppConfig:
    """Validate the variables documented in this module's docstring into an AppConfig."""
    password = None
    pw_file = (env.get(ENV_PASSWORD_FILE) or "").strip()
    if pw_file:
        try:
            password = Path(pw_file).read_text().strip() or None
        except OSError as e:
            raise ClientConfigError(
                f"{ENV_PASSWORD_FILE}={pw_file} cannot be read ({e.strerror})"
            ) from None
    elif env.get(ENV_PASSWORD):
        password = env[ENV_PASSWORD]
    tls = tuple((k, env[v].strip()) for k, v in ENV_TLS.items() if (env.get(v) or "").strip())
    if tls and "ssl_ca_certs" not in dict(tls):
        raise ClientConfigError(f"{ENV_TLS['ssl_certfile']} needs {ENV_TLS['ssl_ca_certs']}")
    sentinels_raw = (env.get(ENV_SENTINELS) or "").strip()
    if sentinels_raw:
        sentinels = tuple(
            parse_hostport(x, ENV_SENTINELS) for x in sentinels_raw.split(",") if x.strip()
        )
        master = (env.get(ENV_MASTER) or "").strip()
        if not master:
            raise ClientConfigError(f"{ENV_SENTINELS} is set but {ENV_MASTER} is missing")
        return AppConfig(sentinels=sentinels, master=master, password=password, tls=tls)
    url = (env.get(ENV_URL) or "").strip()
    if url:
        u = urlparse(url)
        if u.scheme not in ("redis", "rediss") or not u.hostname:
            raise ClientConfigError(f"{ENV_URL} must look like redis://host:port/0")
        return AppConfig(url=url, password=password, tls=tls)
    raise ClientConfigError(f"neither {ENV_SENTINELS} nor {ENV_URL} is set")


def read_env_file(path: str | Path) -> dict[str, str]:
    """Read a dotenv file as python-dotenv does, refusing statements python-dotenv would skip.

    The values are `appconfig.envfile`'s, the reader the rollback uses before and after it
    rewrites this file, so the app (and the simulator) read exactly the values the rollback wrote.
    """
    from redis_ha.appconfig import envfile  # here: apps importing this module need no YAML

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not UTF-8"
        raise ClientConfigError(f"{p}: cannot read env file ({why})") from None
    for b in envfile.parse(text):
        if b.error:
            raise ClientConfigError(
                f"{p}:{b.original.line}: expected KEY=value (python-dotenv skips this statement)"
            )
    return envfile.values(text)


def naive(
    sentinels: list[tuple[str, int]], master: str, *, password: str | None = None, **kw: Any
) -> redis.Redis:
    """redis-py's Sentinel client with plain settings, the way a typical app starts (baseline)."""
    tls = {k: v for k, v in kw.items() if k == "ssl" or k.startswith("ssl_")}
    s = Sentinel(
        sentinels,
        sentinel_kwargs={"password": password, "socket_timeout": 0.5, **tls},
    )
    return s.master_for(
        master,
        socket_timeout=0.5,
        password=password,
        retry=Retry(NoBackoff(), 0),
        **kw,
    )


def recommended(
    sentinels: list[tuple[str, int]],
    master: str,
    *,
    password: str | None = None,
    retry_budget_s: float = RETRY_BUDGET_S,
    socket_timeout: float = SOCKET_TIMEOUT,
    **kw: Any,
) -> redis.Redis:
    """A redis.Redis for the primary with this project's recommended settings (module docstring)."""
    s = MajoritySentinel(
        sentinels,
        sentinel_kwargs={
            "password": password,
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
            **{k: v for k, v in kw.items() if k == "ssl" or k.startswith("ssl_")},
        },
    )
    tls = kw.pop("ssl", False)  # the TLS connection class takes the ssl_* arguments only
    return s.master_for(
        master,
        redis_class=HARedis,
        connection_class=HASSLConnection if tls else HAConnection,
        socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_keepalive=True,
        password=password,
        retry=BudgetRetry(retry_budget_s),
        **kw,
    )


def from_url(
    url: str,
    *,
    password: str | None = None,
    retry_budget_s: float = RETRY_BUDGET_S,
    socket_timeout: float = SOCKET_TIMEOUT,
    **kw: Any,
) -> redis.Redis:
    """One fixed server (REDIS_URL) with the same timeouts and retry budget."""
    extra: dict[str, Any] = {}
    if password and not urlparse(url).password:
        extra["password"] = password
    return HARedis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_keepalive=True,
        retry=BudgetRetry(retry_budget_s),
        **extra,
        **kw,
    )


def from_config(cfg: AppConfig, *, style: str = "recommended", **kw: Any) -> redis.Redis:
    """Build the client an app would build from `cfg` (style: recommended | naive)."""
    if cfg.mode == "url":
        assert cfg.url is not None
        if style == "naive":
            extra = {"password": cfg.password} if cfg.password else {}
            return redis.Redis.from_url(
                cfg.url,
                socket_timeout=0.5,
                retry=Retry(NoBackoff(), 0),
                **extra,
                **cfg.url_tls(),
                **kw,
            )
        return from_url(cfg.url, password=cfg.password, **cfg.url_tls(), **kw)
    assert cfg.master is not None
    build = naive if style == "naive" else recommended
    return build(list(cfg.sentinels), cfg.master, password=cfg.password, **cfg.ssl_kwargs(), **kw)


def from_env(env: Mapping[str, str], **kw: Any) -> redis.Redis:
    """The recommended client from REDIS_* variables (see the module docstring)."""
    return from_config(config_from_env(env), **kw)


def primary_address(r: redis.Redis) -> str | None:
    """The address this client currently sends primary traffic to (None before it first connects).

    For a Sentinel client this is the address it last discovered, so a change means the client
    has followed a failover.
    """
    pool = r.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        addr = pool.master_address
        return f"{addr[0]}:{addr[1]}" if addr else None
    kw = pool.connection_kwargs
    return f"{kw.get('host')}:{kw.get('port')}"


def close(r: redis.Redis) -> None:
    """Close the client and, for a Sentinel client, its Sentinel connections."""
    pool = r.connection_pool
    try:
        r.close()
        pool.disconnect()
    finally:
        if isinstance(pool, SentinelConnectionPool):
            pool.sentinel_manager.close()
