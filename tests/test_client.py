"""The recommended client helper: env parsing (pure) and Sentinel discovery (real lab)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.sentinel import MasterNotFoundError

from redis_ha import client as hac
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports


def test_sentinel_mode_wins_and_reads_password_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    cfg = hac.config_from_env(
        {
            "REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.1:26380,127.0.0.1:26381",
            "REDIS_SENTINEL_MASTER": "mymaster",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "REDIS_PASSWORD_FILE": str(pw),
        }
    )
    assert cfg.mode == "sentinel"
    assert cfg.sentinels == (("127.0.0.1", 26379), ("127.0.0.1", 26380), ("127.0.0.1", 26381))
    assert cfg.password == "s3cret"
    assert "s3cret" not in cfg.describe()


def test_url_mode_when_sentinels_are_removed() -> None:
    cfg = hac.config_from_env({"REDIS_URL": "redis://127.0.0.1:7000/0", "REDIS_PASSWORD": "pw"})
    assert cfg.mode == "url"
    assert cfg.describe() == "url redis://127.0.0.1:7000/0"
    assert cfg.password == "pw"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "neither REDIS_SENTINELS nor REDIS_URL"),
        ({"REDIS_SENTINELS": "127.0.0.1:1"}, "REDIS_SENTINEL_MASTER is missing"),
        ({"REDIS_SENTINELS": "nohostport", "REDIS_SENTINEL_MASTER": "m"}, "not host:port"),
        ({"REDIS_URL": "http://x"}, "redis://host:port/0"),
        (
            {"REDIS_URL": "redis://h:1/0", "REDIS_PASSWORD_FILE": "/nonexistent/pw"},
            "cannot be read",
        ),
    ],
)
def test_bad_config_is_one_readable_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(hac.ClientConfigError, match=message):
        hac.config_from_env(env)


def test_read_env_file(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text(
        "# the app's settings\n"
        "export REDIS_SENTINELS=127.0.0.1:1,127.0.0.1:2\n"
        "REDIS_SENTINEL_MASTER='mymaster'\n"
        'REDIS_PASSWORD_FILE="/run/pw"\n'
        "OTHER=value # comment\n\n"
    )
    assert hac.read_env_file(p) == {
        "REDIS_SENTINELS": "127.0.0.1:1,127.0.0.1:2",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_PASSWORD_FILE": "/run/pw",
        "OTHER": "value",
    }
    p.write_text("NOT A LINE\n")
    with pytest.raises(hac.ClientConfigError, match=r"app.env:1: expected KEY=value"):
        hac.read_env_file(p)


def test_budget_retry_gives_up_after_its_budget() -> None:
    import time

    calls = []

    def fail() -> None:
        calls.append(time.monotonic())
        raise redis.ConnectionError("refused")

    t0 = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        hac.BudgetRetry(0.3).call_with_retry(fail, lambda e: None)
    took = time.monotonic() - t0
    assert 0.1 < took < 1.0
    assert len(calls) > 2  # it retried, with backoff in between


@pytest.mark.lab
def test_majority_discovery_and_role_check(lab: Lab) -> None:
    inv = lab.inv
    sentinels = [(s.host, s.port) for s in inv.sentinels]
    primary = lab.current_primary()
    s = hac.MajoritySentinel(sentinels, sentinel_kwargs={"password": inv.password()})
    try:
        assert s.discover_master(inv.master_name) == ("127.0.0.1", primary.port)
        with pytest.raises(MasterNotFoundError, match="majority"):
            s.discover_master("no-such-master")
    finally:
        s.close()
    r = hac.recommended(sentinels, inv.master_name, password=inv.password())
    try:
        assert r.set("client-test:k", "1")
        assert hac.primary_address(r) == primary.address
        r.delete("client-test:k")
    finally:
        hac.close(r)


def test_discovery_without_sentinels_fails_fast_and_says_why() -> None:
    ports = free_ports(3)
    r = hac.recommended([("127.0.0.1", p) for p in ports], "mymaster", retry_budget_s=0.5)
    try:
        with pytest.raises(redis.ConnectionError, match="majority"):
            r.get("x")
    finally:
        hac.close(r)


def test_read_env_file_agrees_with_the_rollback_rewriter(tmp_path: Path) -> None:
    """The simulator reads what `appconfig.envfile` writes: quotes with inline comments, escapes."""
    from redis_ha.appconfig import envfile

    p = tmp_path / "app.env"
    p.write_text(
        "export REDIS_URL='redis://127.0.0.1:6390/0'  # legacy\n"
        'REDIS_SENTINEL_MASTER="my\\"master"\n'
        "REDIS_PASSWORD=secret\t# tab before the comment\n"
    )
    envfile.update(p, {"REDIS_URL": "redis://127.0.0.1:6391/0"})  # keeps quote and comment
    assert hac.read_env_file(p) == envfile.read(p)
    assert hac.read_env_file(p)["REDIS_URL"] == "redis://127.0.0.1:6391/0"
    assert hac.config_from_env(hac.read_env_file(p)).url == "redis://127.0.0.1:6391/0"
