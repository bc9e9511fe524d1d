"""Connections to nodes and Sentinels with short timeouts and no hidden retries.

redis-py retries a failed command three times by default; for an operator tool that must answer
within seconds while a node hangs, every retry is latency. Callers that want retries say so.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_ha.errors import ClusterError
from redis_ha.inventory import Endpoint, Inventory

FAST_TIMEOUT = 0.5


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
    if inv.auth.username and "username" not in kw:
        kw["username"] = inv.auth.username
    kw = {**tls_kwargs(inv), **kw}
    host, port = reach(inv, ep)
    return redis.Redis(
        host=host,
        port=port,
        password=password if password is not None else inv.password(),
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=Retry(NoBackoff(), 0),
        decode_responses=not binary,
        client_name="redis-ha-runbooks",
        # No CLIENT SETINFO: one round trip less per connection, and a least-privilege ACL user
        # need not be granted it (Valkey 8 and Redis 7.2+ have it and log the denial).
        driver_info=None,
        **kw,
    )


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


def credential_problem(e: BaseException) -> str | None:
    """What is wrong with our credentials (WRONGPASS, NOAUTH, NOPERM), or None for other errors.

    A node that refuses the tool's credentials answered: it is not down, and a verdict built on
    it would be a false page (`health.cannot_judge`).
    """
    text = str(e) or type(e).__name__
    low = text.lower()
    # Before the generic AuthenticationError: with no password, redis-py 8 gets NOAUTH, or for its
    # HELLO "must be called with the client already authenticated", both as AuthenticationError.
    if "noauth" in low or "authentication required" in low or "already authenticated" in low:
        return "authentication required (no password configured?)"
    if isinstance(e, redis.AuthenticationError) or "wrongpass" in low or "invalid password" in low:
        return "authentication failed (wrong password?)"
    if isinstance(e, redis.exceptions.NoPermissionError) or low.startswith("noperm"):
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
    if isinstance(e, redis.TimeoutError):
        return "timed out (node hung or unreachable)"
    if isinstance(e, redis.ConnectionError):
        if "refused" in low:
            return "connection refused (not running?)"
        return f"unreachable ({text.splitlines()[0]})"
    return text.splitlines()[0]


def call(inv: Inventory, ep: Endpoint, *args: Any, timeout: float = 2.0) -> Any:
    """Run one command on one endpoint; connection problems become a ClusterError naming it."""
    c = client(inv, ep, timeout=timeout)
    try:
        return c.execute_command(*args)
    except redis.ResponseError:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise ClusterError(f"{ep.name} ({ep.address}): {describe_error(e, inv)}") from None
    finally:
        c.close()
