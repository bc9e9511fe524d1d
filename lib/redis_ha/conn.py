"""Connections to nodes and Sentinels with short timeouts and no hidden retries.

redis-py retries a failed command three times by default; for an operator tool that must answer
within seconds while a node hangs, every retry is latency. Callers that want retries say so.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any

from redis_ha import failpoint, resp
from redis_ha.errors import ClusterError
from redis_ha.inventory import Endpoint, Inventory

if TYPE_CHECKING:
    import ssl

    import redis

# redis-py is imported by the functions that use it, not here: facts.py (and so `status` and
# `health`) reads through resp.py and never pays for importing it.

FAST_TIMEOUT = 0.5
CLIENT_NAME = "redis-ha-runbooks"


def client(
    inv: Inventory,
    ep: Endpoint,
    *,
    timeout: float = FAST_TIMEOUT,
    password: str | None = None,
    binary: bool = False,
    **kw: Any,
) -> redis.Redis:
    """A redis-py client for one node or Sentinel with the inventory's password (and ACL user).

    `binary` returns bytes (DUMP payloads, keys of any encoding) instead of decoded strings.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if inv.auth.username and "username" not in kw:
        kw["username"] = inv.auth.username
    kw = {**tls_kwargs(inv), **kw}
    host, port = reach(inv, ep)
    r = redis.Redis(
        host=host,
        port=port,
        password=password if password is not None else inv.password(),
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=Retry(NoBackoff(), 0),
        decode_responses=not binary,
        client_name=CLIENT_NAME,
        # No CLIENT SETINFO: one round trip less per connection, and a least-privilege ACL user
        # need not be granted it (Valkey 8 and Redis 7.2+ have it and log the denial).
        driver_info=None,
        **kw,
    )
    if os.environ.get(failpoint.ENV):
        _count_changes(r)
    return r


def _count_changes(r: redis.Redis) -> None:
    """Every command this client sends is seen by the armed fail point (redis_ha.failpoint)."""
    inner = r.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        out = inner(*args, **options)
        failpoint.command(args)
        return out

    setattr(r, "execute_command", counted)  # noqa: B010 (an instance's method, replaced)


def reader(inv: Inventory, ep: Endpoint, *, timeout: float = FAST_TIMEOUT) -> resp.Connection:
    """A resp.Connection for one node or Sentinel, as `client` would connect: the same address
    (or tunnel), password and ACL user, TLS files, timeouts and client name; no I/O until used.
    Raises InventoryError when the password source cannot be read."""
    host, port = reach(inv, ep)
    t = inv.tls
    return resp.Connection(
        host,
        port,
        timeout=timeout,
        connect_timeout=min(timeout, 2.0),
        username=inv.auth.username or None,
        password=inv.password(),
        ssl_context=None if t is None else tls_context(t.ca_file, t.cert_file, t.key_file),
        name=CLIENT_NAME,
    )


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: Any, cert_file: Any, key_file: Any) -> ssl.SSLContext:
    """The TLS context redis-py builds from the same files (certificate and hostname checked),
    made once per process: the `ssl` module only when an inventory has `tls:`."""
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    ctx.load_verify_locations(cafile=str(ca_file))
    return ctx


def tls_kwargs(inv: Inventory) -> dict[str, Any]:
    """redis-py's TLS arguments from the inventory's files ({} without `tls:`)."""
    t = inv.tls
    if t is None:
        return {}
    return {
        "ssl": True,
        "ssl_ca_certs": str(t.ca_file),
        "ssl_certfile": str(t.cert_file),
        "ssl_keyfile": str(t.key_file),
    }


def reach(inv: Inventory, ep: Endpoint) -> tuple[str, int]:
    """Where to connect for `ep`: its address, or a local SSH forward when the inventory says
    so (`control.tunnel`, redis_ha.tunnel: a network behind a bastion)."""
    from redis_ha import tunnel

    return tunnel.local_address(inv, ep) if tunnel.wanted(inv, ep) else (ep.host, ep.port)


def _redis_error(e: BaseException, name: str) -> bool:
    """`e` is redis-py's exception `name`. Looked up only when redis-py is loaded: an error can
    only be one of its exceptions if it is, and the quick path never loads it."""
    mod = sys.modules.get("redis.exceptions")
    return mod is not None and isinstance(e, getattr(mod, name))


def credential_problem(e: BaseException) -> str | None:
    """What is wrong with our credentials (WRONGPASS, NOAUTH, NOPERM), or None for other errors.

    A node that refuses the tool's credentials answered: it is not down, and a verdict built on
    it would be a false page (`health.cannot_judge`). Takes redis-py's errors and resp.py's.
    """
    text = str(e) or type(e).__name__
    low = text.lower()
    code = e.code if isinstance(e, resp.ReplyError) else None
    # Before the generic AuthenticationError: with no password, redis-py 8 gets NOAUTH, or for its
    # HELLO "must be called with the client already authenticated", both as AuthenticationError.
    if (
        code == "NOAUTH"
        or "noauth" in low
        or "authentication required" in low
        or "already authenticated" in low
    ):
        return "authentication required (no password configured?)"
    if (
        isinstance(e, resp.AuthError)
        or code == "WRONGPASS"
        or _redis_error(e, "AuthenticationError")
        or "wrongpass" in low
        or "invalid password" in low
    ):
        return "authentication failed (wrong password?)"
    if code == "NOPERM" or _redis_error(e, "NoPermissionError") or low.startswith("noperm"):
        return f"permission denied ({text.splitlines()[0]})"
    return None


def describe_error(e: BaseException, inv: Inventory | None = None) -> str:
    """One short line for a connection error, naming auth problems plainly and, given the
    inventory, the credential source to check."""
    text = str(e) or type(e).__name__
    low = text.lower()
    denied = credential_problem(e)
    if denied:
        return denied + (f"; check {inv.credential_source()}" if inv is not None else "")
    if isinstance(e, resp.Timeout) or _redis_error(e, "TimeoutError"):
        return "timed out (node hung or unreachable)"
    if isinstance(e, resp.ConnectError) or _redis_error(e, "ConnectionError"):
        if "refused" in low:
            return "connection refused (not running?)"
        return f"unreachable ({text.splitlines()[0]})"
    return text.splitlines()[0]


def call(inv: Inventory, ep: Endpoint, *args: Any, timeout: float = 2.0) -> Any:
    """Run one command on one endpoint; connection problems become a ClusterError naming it."""
    import redis

    c = client(inv, ep, timeout=timeout)
    try:
        return c.execute_command(*args)
    except redis.ResponseError:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise ClusterError(f"{ep.name} ({ep.address}): {describe_error(e, inv)}") from None
    finally:
        c.close()
