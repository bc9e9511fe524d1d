"""Copy keys with their TTLs from one node to another, bounded in keys and time: the rollback's
session warm-up (Sentinel primary -> single instance, and back for the undo).

Unlike a salvage (`redis_ha.salvage`), nothing is compared: the target is where the app is going,
so a copy replaces what is there (`RESTORE ... REPLACE`). Reading, the binary client and the TTL
arithmetic are salvage's own, so both copiers agree on what "expired meanwhile" means.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import redis

from redis_ha import salvage
from redis_ha.conn import describe_error
from redis_ha.errors import ClusterError
from redis_ha.inventory import Endpoint, Inventory

T = TypeVar("T")


def _as_bytes(k: bytes | str) -> bytes:
    return k if isinstance(k, bytes) else k.encode()


def _again_once(do: Callable[[], T], log: Callable[[str], None]) -> T:
    """`do()`, once more if the connection dropped under it: redis-py reconnects on the next
    command, and a batch is safe to repeat (SCAN from the same cursor, RESTORE ... REPLACE).
    Without it a cut connection failed the whole warm-up, and the rollback with it (seen in 1
    of 6 fault-table runs); a node that is gone fails the second try too."""
    try:
        return do()
    except redis.ConnectionError as e:
        log(f"  warm-up: connection lost ({describe_error(e)}); reconnecting once")
        return do()


def _copy_batch(a: redis.Redis, b: redis.Redis, keys: list[Any]) -> tuple[int, int, list[str]]:
    """PTTL+DUMP `keys` on `a`, RESTORE ... REPLACE them on `b`: (copied, gone, errors)."""
    p = a.pipeline(transaction=False)
    for k in keys:
        p.pttl(k)
        p.dump(k)
    got = p.execute()
    w = b.pipeline(transaction=False)
    n = gone = 0
    for i, k in enumerate(keys):
        ttl, payload = got[2 * i], got[2 * i + 1]
        if salvage.gone(ttl, payload):
            gone += 1
            continue
        w.restore(k, salvage.restore_ttl(ttl), payload, replace=True)
        n += 1
    errors = [
        str(r).splitlines()[0][:200]
        for r in w.execute(raise_on_error=False)
        if isinstance(r, Exception)
    ]
    return n - len(errors), gone, errors


def copy_keys(
    inv: Inventory,
    src: Endpoint,
    dst: Endpoint,
    *,
    max_keys: int,
    max_seconds: float,
    batch: int = 500,
    match: str = "*",
    skip: tuple[bytes, ...] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """SCAN the source, pipelined PTTL+DUMP there, pipelined RESTORE ... REPLACE on the target.

    Bounded by `max_keys` and `max_seconds` so a huge keyspace cannot eat the caller's budget;
    keys that expire between DUMP and RESTORE are skipped, not errors. Keys starting with one of
    `skip` (and the tool's own keys, always) stay where they are: a copied lock would be stale.
    """
    prefixes = (salvage.INTERNAL_PREFIX, *skip)
    t0 = time.monotonic()
    deadline = t0 + max_seconds
    a, b = salvage.raw_client(inv, src), salvage.raw_client(inv, dst)
    copied = skipped = failed = 0
    stopped = first_error = ""
    last_report = t0
    try:
        cursor = 0
        while True:
            cursor, keys = _again_once(
                partial(a.scan, cursor=cursor, match=match, count=batch), log
            )
            keys = [k for k in keys if not _as_bytes(k).startswith(prefixes)]
            keys = keys[: max(0, max_keys - copied)]
            if keys:
                n, gone, errors = _again_once(partial(_copy_batch, a, b, keys), log)
                skipped += gone
                failed += len(errors)
                first_error = first_error or (errors[0] if errors else "")
                copied += n
            now = time.monotonic()
            if now - last_report >= 1.0:
                log(f"  warm-up: {copied} keys copied ({now - t0:.0f} s)")
                last_report = now
            if cursor == 0:
                break
            if copied >= max_keys:
                stopped = f"max_keys {max_keys} reached"
                break
            if now > deadline:
                stopped = f"max_seconds {max_seconds:.0f} reached"
                break
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
        raise ClusterError(f"copy stopped after {copied} keys: {describe_error(e)}") from None
    finally:
        a.close()
        b.close()
    return {
        "copied": copied,
        "skipped": skipped,
        "failed": failed,
        "first_error": first_error,
        "stopped": stopped,
        "seconds": round(time.monotonic() - t0, 3),
    }
