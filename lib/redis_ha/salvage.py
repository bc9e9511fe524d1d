"""Salvage what only a stale primary has: plan from both sides, export everything, then merge.

Reads go to the stale node's own address (it may still be cut off from the cluster), writes to
the authoritative primary. Every key the stale side holds is exported (DUMP + PTTL, and the text
of string values) to a private JSONL file BEFORE anything is written, so a wrong decision can be
undone by hand. Writes never clobber a key that changed since it was read: a copy is a RESTORE
without REPLACE (a key that appeared meanwhile wins), a replacement is WATCHed.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from redis_ha import cancel, conn
from redis_ha.errors import ClusterError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.splitbrain import DEFAULT_POLICY, Decision, KeyVersion, decide

BATCH = 500
RECONNECTS = 3  # a write whose connection was cut is sent again on a new one, this many times
RECONNECT_PAUSE_S = 0.2
INTERNAL_PREFIX = b"redis-ha-runbooks:"  # the tool's own probe keys are never salvaged


def raw_client(inv: Inventory, ep: Endpoint, timeout: float = 5.0) -> redis.Redis:
    """A binary-safe client (DUMP payloads are bytes) to a node's own address."""
    return conn.client(inv, ep, timeout=timeout, binary=True)


def gone(pttl: Any, dump: Any) -> bool:
    """True when a key read as PTTL + DUMP expired or was deleted meanwhile (nothing to copy)."""
    return dump is None or pttl == -2


def restore_ttl(pttl: int) -> int:
    """RESTORE's ttl argument for a key whose PTTL was `pttl` (-1, no expiry, is 0)."""
    return max(int(pttl), 0)


@dataclass
class Item:
    key: bytes
    stale: KeyVersion
    auth: KeyVersion | None
    decision: Decision
    result: str = ""  # after apply: what really happened


@dataclass
class Plan:
    stale: str
    authoritative: str
    policy: str
    items: list[Item] = field(default_factory=list)
    scanned: int = 0

    def counts(self) -> dict[str, int]:
        return dict(Counter(i.decision.action for i in self.items))

    def writes(self) -> list[Item]:
        return [i for i in self.items if i.decision.writes]

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{self.stale}: {self.scanned} keys; copy {c.get('copy', 0)} missing on "
            f"{self.authoritative}, replace {c.get('replace', 0)}, keep {c.get('keep', 0)} "
            f"(conflicts kept), skip {c.get('skip', 0)} (identical or expired) "
            f"[policy {self.policy}]"
        )


def _versions(c: redis.Redis, keys: list[bytes]) -> list[KeyVersion | None]:
    p = c.pipeline(transaction=False)
    for k in keys:
        p.type(k)
        p.pttl(k)
        p.dump(k)
        p.get(k)
    res = p.execute(raise_on_error=False)
    out: list[KeyVersion | None] = []
    for i in range(len(keys)):
        t, pttl, dump, val = res[4 * i : 4 * i + 4]
        t = t.decode() if isinstance(t, bytes) else str(t)
        if t == "none" or gone(pttl, dump):
            out.append(None)
            continue
        out.append(
            KeyVersion(
                type=t,
                pttl=int(pttl) if isinstance(pttl, int) else -1,
                value=val if t == "string" and isinstance(val, bytes) else None,
                dump=dump if isinstance(dump, bytes) else None,
            )
        )
    return out


def plan(inv: Inventory, stale: Endpoint, auth: Endpoint, policy: str = DEFAULT_POLICY) -> Plan:
    """Compare every key of the stale node with the authoritative primary; decide each."""
    sc, ac = raw_client(inv, stale), raw_client(inv, auth)
    pl = Plan(stale=stale.name, authoritative=auth.name, policy=policy)
    try:
        batch: list[bytes] = []
        for key in sc.scan_iter(count=1000):
            if key.startswith(INTERNAL_PREFIX):
                continue
            batch.append(key)
            if len(batch) >= BATCH:
                _plan_batch(pl, sc, ac, batch, policy)
                batch = []
        if batch:
            _plan_batch(pl, sc, ac, batch, policy)
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise ClusterError(f"salvage: cannot read {stale.name} or {auth.name}: {e}") from None
    finally:
        sc.close()
        ac.close()
    return pl


def _plan_batch(pl: Plan, sc: redis.Redis, ac: redis.Redis, keys: list[bytes], policy: str) -> None:
    sv, av = _versions(sc, keys), _versions(ac, keys)
    for k, s, a in zip(keys, sv, av, strict=True):
        pl.scanned += 1
        if s is None:
            continue  # expired or deleted between SCAN and read
        pl.items.append(Item(k, s, a, decide(s, a, policy)))


def _b64(b: bytes | None) -> str | None:
    return base64.b64encode(b).decode() if b is not None else None


def _text(b: bytes | None) -> str | None:
    if b is None:
        return None
    try:
        return b.decode()
    except UnicodeDecodeError:
        return None


def export(pl: Plan, path: Path) -> Path:
    """Write every key of the plan (both sides for conflicts) to a private JSONL file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        head = {
            "kind": "header",
            "stale": pl.stale,
            "authoritative": pl.authoritative,
            "policy": pl.policy,
            "taken_at": time.time(),
            "keys": len(pl.items),
            "restore": "RESTORE <key> <pttl or 0> <base64-decoded dump> [REPLACE]",
        }
        fh.write(json.dumps(head) + "\n")
        for it in pl.items:
            rec: dict[str, Any] = {
                "key_b64": _b64(it.key),
                "key": _text(it.key),
                "type": it.stale.type,
                "pttl": it.stale.pttl,
                "dump_b64": _b64(it.stale.dump),
                "value": _text(it.stale.value),
                "decision": it.decision.action,
                "reason": it.decision.reason,
            }
            if it.auth is not None and it.decision.action != "skip":
                rec["authoritative"] = {
                    "type": it.auth.type,
                    "pttl": it.auth.pttl,
                    "dump_b64": _b64(it.auth.dump),
                    "value": _text(it.auth.value),
                }
            fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def apply(inv: Inventory, pl: Plan, auth: Endpoint) -> dict[str, int]:
    """Write the plan's copies and replacements to the authoritative primary; count results.

    A lost connection (a CLIENT KILL, a proxy restart) is not a failed salvage: the write is sent
    again on a new connection. Failing instead made the run undo its fence while the stale
    primary's writes were only half merged."""
    c = raw_client(inv, auth)
    results: Counter[str] = Counter()
    try:
        for it in pl.writes():
            it.result = _apply_again(c, it)
            results[it.result] += 1
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise ClusterError(
            f"salvage: lost {auth.name} after {sum(results.values())} writes: {e}; "
            "the export file has everything, re-run the procedure"
        ) from None
    finally:
        c.close()
    return dict(results)


def _apply_again(c: redis.Redis, it: Item) -> str:
    """`_apply_one`, sent again after a lost connection (redis-py reconnects on the next
    command); the last loss is raised."""
    tries = 0
    while True:
        try:
            return _apply_one(c, it, again=tries > 0)
        except (redis.ConnectionError, redis.TimeoutError):
            tries += 1
            if tries > RECONNECTS:
                raise
            cancel.sleep(RECONNECT_PAUSE_S)


def _apply_one(c: redis.Redis, it: Item, *, again: bool = False) -> str:
    """One copy or replacement. `again`: an earlier try may have been carried out with its
    reply lost, so finding the stale value already there means it was written."""
    if it.stale.dump is None:
        return "failed"
    ttl = restore_ttl(it.stale.pttl)
    if it.decision.action == "copy":
        try:
            c.restore(it.key, ttl, it.stale.dump)
            return "copied"
        except redis.ResponseError as e:
            if "BUSYKEY" in str(e):
                if again and c.dump(it.key) == it.stale.dump:
                    return "copied"
                return "kept (appeared on the authoritative primary meanwhile)"
            return "failed"
    # replace: only if the authoritative value is still the one the decision was made on
    with c.pipeline(transaction=True) as p:
        try:
            p.watch(it.key)
            now = p.dump(it.key)
            if again and now == it.stale.dump:
                p.unwatch()
                return "replaced"
            if it.auth is None or now != it.auth.dump:
                p.unwatch()
                return "kept (changed on the authoritative primary meanwhile)"
            p.multi()
            p.restore(it.key, ttl, it.stale.dump, replace=True)
            p.execute()
            return "replaced"
        except redis.WatchError:
            return "kept (changed on the authoritative primary meanwhile)"
        except redis.ResponseError:
            return "failed"
