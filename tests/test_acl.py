"""The least-privilege ACL users of inventories/acl/ on a real lab (`lab.up --acl`).

The read-only operator runs every read-only task with no ACL denial logged anywhere, and every
changing procedure refuses it before any change, in one line naming the missing permission.
The procedure operator's planned switchover loses no acknowledged write; the Sentinels
(`sentinel auth-user`/`sentinel-user`) and replication (`masteruser`) run on their own users.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha import journal as journalmod
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory
from redis_ha.lab.traffic import Traffic

from .conftest import run_invoke

pytestmark = pytest.mark.lab

READ_ONLY_TASKS = [
    ["status"],
    ["status", "--json"],
    ["health"],
    ["incident", "--json"],
    ["splitbrain.detect"],
    ["config.drift"],
    ["failover.manual", "--dry-run"],
]
CHANGING = [
    ["failover.manual", "--yes"],
    ["replica.rebuild", "redis-3", "--yes", "--force"],
    ["splitbrain.recover", "--yes"],
    ["rollback", "--yes"],
]


@pytest.fixture(scope="module")
def acl_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(inventory.load(write_lab_inventory(tmp_path_factory.mktemp("acl"))))
    try:
        lab.up(timeout=60, acl=True)
        yield lab
    finally:
        lab.down()


def as_user(lab: Lab, user: str) -> Path:
    d = yaml.safe_load(Path(lab.inv.path).read_text())
    d["auth"]["username"] = user
    p = Path(lab.inv.path).with_name(f"{user}.yaml")
    p.write_text(yaml.safe_dump(d))
    return p


def acl_denials(inv: Inventory) -> dict[str, list[Any]]:
    """Every ACL LOG entry on every node and Sentinel (read as `default`), then cleared."""
    out: dict[str, list[Any]] = {}
    for ep in inv.endpoints():
        c = redis.Redis(host=ep.host, port=ep.port, password=inv.password())
        try:
            log = c.execute_command("ACL", "LOG")
            if log:
                out[ep.name] = log
            c.execute_command("ACL", "LOG", "RESET")
        finally:
            c.close()
    return out


def shape(inv: Inventory) -> dict[str, Any]:
    f = factsmod.gather(inv)
    return {n.name: (n.role, n.replicating_from, n.config) for n in f.nodes} | {
        s.name: s.primary_name for s in f.sentinels
    }


def test_lab_runs_on_the_acl_users(acl_lab: Lab) -> None:
    c = redis.Redis(
        host="127.0.0.1", port=acl_lab.inv.nodes[0].port, password=acl_lab.inv.password()
    )
    users = {str(u).split()[1] for u in c.execute_command("ACL", "LIST")}
    c.close()
    assert {"ha-readonly", "ha-ops", "ha-sentinel", "ha-replica", "app"} <= users
    conf = acl_lab.conf("sentinel-1").read_text()
    # Redis writes the user bare, Valkey quotes it
    assert re.search(r'^sentinel auth-user mymaster "?ha-sentinel"?$', conf, re.M), conf
    assert acl_lab.inv.password() not in "\n".join(
        ln for ln in conf.splitlines() if ln.startswith("user ")
    )


@pytest.mark.parametrize("argv", READ_ONLY_TASKS, ids=lambda a: " ".join(a))
def test_read_only_user_runs_every_read_only_task(
    acl_lab: Lab, argv: list[str], tmp_path: Path
) -> None:
    acl_denials(acl_lab.inv)
    inv = as_user(acl_lab, "ha-readonly")
    r = run_invoke(*argv, inventory=inv, env={journalmod.ENV_DIR: str(tmp_path)}, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert acl_denials(acl_lab.inv) == {}


@pytest.mark.parametrize("argv", CHANGING, ids=lambda a: a[0])
def test_read_only_user_is_refused_before_any_change(
    acl_lab: Lab, argv: list[str], tmp_path: Path
) -> None:
    acl_denials(acl_lab.inv)
    before = shape(acl_lab.inv)
    inv = as_user(acl_lab, "ha-readonly")
    r = run_invoke(*argv, inventory=inv, env={journalmod.ENV_DIR: str(tmp_path)}, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: the ACL user 'ha-readonly' lacks a permission"), line
    assert "no permissions to run" in line and "nothing was changed" in line
    assert shape(acl_lab.inv) == before
    # Nothing was even attempted: ACL DRYRUN asks without running, so no denial is logged.
    assert acl_denials(acl_lab.inv) == {}


def test_app_user_reaches_its_session_keys_only(acl_lab: Lab) -> None:
    p = acl_lab.current_primary()
    c = redis.Redis(host=p.host, port=p.port, username="app", password=acl_lab.inv.password())
    try:
        c.set("session:acl-test", "1", px=5000)
        assert c.get("session:acl-test") == b"1"
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.set("other:acl-test", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.config_get("maxmemory")
    finally:
        c.close()
    acl_denials(acl_lab.inv)


def switchover_under_traffic(lab: Lab, inventory: Path, jdir: Path, prefix: str) -> None:
    """failover.manual through `inventory` while the app writes: it completes, the primary moves,
    and not one acknowledged write is lost (the acceptance of issue 15, ACL and TLS alike)."""
    old = lab.current_primary().name
    t = Traffic(lab.inv, rate=400, client="recommended", keys=500, prefix=prefix)
    t.start()
    try:
        time.sleep(1.0)
        r = run_invoke(
            "failover.manual", "--yes", inventory=inventory,
            env={journalmod.ENV_DIR: str(jdir)}, timeout=120,
        )  # fmt: skip
        time.sleep(1.0)
    finally:
        rep = t.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.current_primary().name != old
    assert rep.missing_writes == 0 and rep.failed == 0, rep.to_dict()
    assert rep.writes > 500, rep.to_dict()


def test_switchover_with_acl_users_loses_no_write(acl_lab: Lab, tmp_path: Path) -> None:
    switchover_under_traffic(acl_lab, as_user(acl_lab, "ha-ops"), tmp_path, "session:acl-")
    assert acl_denials(acl_lab.inv) == {}
