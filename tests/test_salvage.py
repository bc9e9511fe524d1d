"""Salvage against real processes: plan, export, merge (the lab's single instance plays the stale
primary, so the shared lab stays healthy)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from redis_ha import salvage
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab

pytestmark = pytest.mark.lab

PFX = "test-salvage:"


def session(ts: float, body: str) -> str:
    return json.dumps({"v": 1, "ts": ts, "data": body})


@pytest.fixture
def sides(lab: Lab):
    inv: Inventory = lab.inv
    assert inv.single is not None
    auth = lab.current_primary()
    stale_c = salvage.raw_client(inv, inv.single)
    auth_c = salvage.raw_client(inv, auth)
    now = time.time()
    stale_c.flushall()
    stale_c.set(PFX + "only-stale", session(now, "s"))
    stale_c.set(PFX + "only-stale-ttl", session(now, "t"), px=60_000)
    stale_c.set(PFX + "same", session(now, "same"))
    stale_c.set(PFX + "stale-newer", session(now + 5, "stale"))
    stale_c.set(PFX + "auth-newer", session(now - 5, "stale"))
    stale_c.hset(PFX + "hash", mapping={"a": "1"})
    auth_c.set(PFX + "same", session(now, "same"))
    auth_c.set(PFX + "stale-newer", session(now, "auth"))
    auth_c.set(PFX + "auth-newer", session(now, "auth"))
    yield inv, inv.single, auth, stale_c, auth_c
    stale_c.flushall()
    auth_c.delete(*[k for k in auth_c.scan_iter(match=PFX + "*")] or [PFX + "none"])
    stale_c.close()
    auth_c.close()


def test_default_policy_copies_missing_and_keeps_conflicts(sides, tmp_path: Path) -> None:
    inv, stale, auth, stale_c, auth_c = sides
    pl = salvage.plan(inv, stale, auth)
    got = {it.key.decode(): it.decision.action for it in pl.items}
    assert got == {
        PFX + "only-stale": "copy",
        PFX + "only-stale-ttl": "copy",
        PFX + "same": "skip",
        PFX + "stale-newer": "keep",
        PFX + "auth-newer": "keep",
        PFX + "hash": "copy",
    }
    path = salvage.export(pl, tmp_path / "out.jsonl")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and len(lines) == 1 + len(pl.items)
    conflict = next(r for r in lines[1:] if r["key"] == PFX + "stale-newer")
    assert "authoritative" in conflict and conflict["decision"] == "keep"

    res = salvage.apply(inv, pl, auth)
    assert res == {"copied": 3}
    assert auth_c.get(PFX + "only-stale") == stale_c.get(PFX + "only-stale")
    assert 0 < auth_c.pttl(PFX + "only-stale-ttl") <= 60_000
    assert auth_c.hgetall(PFX + "hash") == {b"a": b"1"}
    assert b'"auth"' in auth_c.get(PFX + "stale-newer")  # never overwritten by default
    assert b'"auth"' in auth_c.get(PFX + "auth-newer")

    # The export alone can restore a key (what an operator would do by hand).
    rec = next(r for r in lines[1:] if r["key"] == PFX + "only-stale")
    auth_c.restore(PFX + "restored", 0, base64.b64decode(rec["dump_b64"]))
    assert auth_c.get(PFX + "restored") == stale_c.get(PFX + "only-stale")


def test_newest_wins_replaces_only_older_values(sides) -> None:
    inv, stale, auth, stale_c, auth_c = sides
    pl = salvage.plan(inv, stale, auth, "newest-wins")
    res = salvage.apply(inv, pl, auth)
    assert res == {"copied": 3, "replaced": 1}
    assert b'"stale"' in auth_c.get(PFX + "stale-newer")
    assert b'"auth"' in auth_c.get(PFX + "auth-newer")


def test_a_key_written_meanwhile_is_not_clobbered(sides) -> None:
    inv, stale, auth, stale_c, auth_c = sides
    pl = salvage.plan(inv, stale, auth, "newest-wins")
    auth_c.set(PFX + "only-stale", session(time.time() + 100, "fresh"))  # app wrote it meanwhile
    auth_c.set(PFX + "stale-newer", session(time.time() + 100, "fresh"))
    res = salvage.apply(inv, pl, auth)
    assert res["copied"] == 2
    assert sum(v for k, v in res.items() if k.startswith("kept")) == 2
    assert b'"fresh"' in auth_c.get(PFX + "only-stale")
    assert b'"fresh"' in auth_c.get(PFX + "stale-newer")
