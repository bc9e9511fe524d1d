"""Refused credentials are named and give the verdict "unknown", never "down" (pure logic)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import redis

from redis_ha.conn import credential_problem, describe_error
from redis_ha.health import DOWN, UNKNOWN, assess
from redis_ha.triage import triage

from .factories import healthy, lab_inv

ERRORS = [
    redis.AuthenticationError("invalid username-password pair or user is disabled."),
    redis.ResponseError("WRONGPASS invalid username-password pair or user is disabled."),
    redis.AuthenticationError("Authentication required."),
    redis.ResponseError("NOAUTH Authentication required."),
    redis.exceptions.NoPermissionError(
        "this user has no permissions to run the 'config|set' command"
    ),
]


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: str(e)[:12])
def test_every_refusal_names_the_credential_source(
    tmp_path: Path, err: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_HA_PASSWORD", raising=False)
    inv = lab_inv(tmp_path)
    line = describe_error(err, inv)
    assert credential_problem(err) and "\n" not in line
    assert f"; check the password file {inv.auth.password_file}, as ACL user" in line


def test_a_dead_node_is_not_a_refusal() -> None:
    for e in (redis.ConnectionError("Connection refused"), redis.TimeoutError("timed out")):
        assert credential_problem(e) is None


def test_every_endpoint_refusing_is_unknown_not_down(tmp_path: Path) -> None:
    inv = lab_inv(tmp_path)
    f = healthy(inv, "redis-1")
    for e in [*f.nodes, *f.sentinels]:
        e.up, e.error, e.denied = False, describe_error(ERRORS[0], inv), True
    h = assess(inv, f)
    assert h.level == UNKNOWN and h.exit_code == 3
    assert not any(" is down" in p or "no usable primary" in p for p in h.problems), h.problems
    assert any("no node accepted the tool's credentials" in p for p in h.problems), h.problems
    (only,) = triage(inv, f, h)
    assert "unknown" in only.title and str(inv.auth.password_file) in only.why


def test_a_dead_cluster_is_still_down(tmp_path: Path) -> None:
    inv = lab_inv(tmp_path)
    f = healthy(inv, "redis-1")
    for e in [*f.nodes, *f.sentinels]:
        e.up, e.error = False, "connection refused (not running?)"
    assert assess(inv, f).level == DOWN


def test_one_refusing_replica_is_named_not_down(tmp_path: Path) -> None:
    inv = lab_inv(tmp_path)
    f = healthy(inv, "redis-1")
    f.nodes[2].up, f.nodes[2].error = False, describe_error(ERRORS[4], inv)
    f.nodes[2].denied = True
    h = assess(inv, f)
    assert h.level == "degraded"
    assert any("redis-3" in p and "refused our credentials" in p for p in h.problems)
    assert not any("redis-3" in p and " is down" in p for p in h.problems)


def test_acl_user_is_named(tmp_path: Path) -> None:
    inv = lab_inv(tmp_path)
    inv = replace(inv, auth=replace(inv.auth, username="ops-ro"))
    assert 'as ACL user "ops-ro"' in describe_error(ERRORS[1], inv)
