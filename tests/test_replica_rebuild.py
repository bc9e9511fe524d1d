"""`invoke replica.rebuild` against real processes: refusals, the diverge fault, the rebuild
under traffic, and the replica staying unpromotable while it syncs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from redis_ha import facts as factsmod
from redis_ha import view as viewmod
from redis_ha.actions import cluster as cluster_actions
from redis_ha.actions import replica as replica_actions
from redis_ha.conn import client
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab import faults
from redis_ha.lab.cluster import Lab
from redis_ha.lab.traffic import Traffic
from tests.conftest import ROOT, run_invoke

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _leave_priorities_as_found(request: pytest.FixtureRequest):
    """A failing test must not leave a shared-lab node unpromotable or hidden for others."""
    if "lab" not in request.fixturenames:
        yield
        return
    lab: Lab = request.getfixturevalue("lab")  # set up first, so torn down after this fixture
    yield
    for n in lab.inv.nodes:
        try:
            c = client(lab.inv, n)
            c.config_set("replica-priority", str(lab.inv.settings.replica_priority))
            c.config_set("replica-announced", "yes")
            c.close()
        except Exception:  # noqa: BLE001 - a node that is down gets a fresh config on restart
            pass


def _env(tmp_path: Path) -> dict[str, str]:
    return {"REDIS_HA_JOURNAL_DIR": str(tmp_path / "journal")}


def _snapshot(lab: Lab) -> dict[str, tuple[int | None, str | None]]:
    """PID and replica-priority of every node: what 'nothing changed' means."""
    out = {}
    for n in lab.inv.nodes:
        f = factsmod.node_facts(lab.inv, n)
        out[n.name] = (lab.pid(n.name), f.config.get("replica-priority"))
    return out


def _replicas(lab: Lab) -> tuple[Endpoint, list[Endpoint]]:
    p = lab.current_primary()
    return p, [n for n in lab.inv.nodes if n != p]


def _load(inv: Inventory, primary: Endpoint, n: int, value_bytes: int = 100) -> None:
    """`n` session keys through a pipeline (fast: ~100k keys/s)."""
    c = client(inv, primary, timeout=10)
    try:
        value = "s" * value_bytes
        for start in range(0, n, 10_000):
            p = c.pipeline(transaction=False)
            for i in range(start, min(n, start + 10_000)):
                p.set(f"bulk:{i}", value)
            p.execute()
    finally:
        c.close()


def hold_full_sync_open(inv: Inventory, primary: Endpoint, *, keys: int, seconds: float) -> None:
    """Make the primary's next full sync of `keys` keys last about `seconds`, on any server.

    `rdb-key-save-delay` (microseconds per key) slows the snapshot itself, which both Redis and
    Valkey honour, where `repl-diskless-sync-delay` only postpones its start. The start delay is
    0 so the transfer begins at once and stays open, visibly, until the primary is killed.
    """
    c = client(inv, primary)
    try:
        c.config_set("repl-diskless-sync-delay", "0")
        c.config_set("rdb-key-save-delay", str(int(seconds * 1_000_000 / keys)))
    finally:
        c.close()


def _priority(inv: Inventory, node: Endpoint) -> str:
    c = client(inv, node)
    try:
        return str(c.config_get("replica-priority")["replica-priority"])
    finally:
        c.close()


def test_refuses_the_primary_and_changes_nothing(lab: Lab, tmp_path: Path):
    primary, _ = _replicas(lab)
    before = _snapshot(lab)
    r = run_invoke(
        "replica.rebuild",
        "--node",
        primary.name,
        "--yes",
        inventory=lab.inv.path,
        env=_env(tmp_path),
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "is the current primary" in out
    assert "Traceback" not in out
    assert _snapshot(lab) == before
    r = run_invoke(
        "replica.rebuild", "--node", "redis-9", "--yes", inventory=lab.inv.path, env=_env(tmp_path)
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "unknown node 'redis-9'" in out and "Traceback" not in out
    d = run_invoke("replica.diagnose", "--node", primary.name, "--json", inventory=lab.inv.path)
    assert d.returncode == 0 and '"refusals"' in d.stdout and "current primary" in d.stdout


def test_refuses_the_last_in_sync_replica_and_changes_nothing(lab: Lab, tmp_path: Path):
    _, (a, b) = _replicas(lab)
    lab.stop(a.name, kill=True)
    before = _snapshot(lab)
    r = run_invoke(
        "replica.rebuild",
        "--node",
        b.name,
        "--yes",
        "--force",
        inventory=lab.inv.path,
        env=_env(tmp_path),
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "last in-sync replica" in out and "--allow-write-outage" in out
    assert _snapshot(lab) == before  # b kept its PID and its priority


def test_dry_run_touches_nothing(lab: Lab, tmp_path: Path):
    _, (a, _b) = _replicas(lab)
    before = _snapshot(lab)
    r = run_invoke(
        "replica.rebuild",
        "--node",
        a.name,
        "--dry-run",
        "--force",
        inventory=lab.inv.path,
        env=_env(tmp_path),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "would:" in r.stdout and "replica-priority 0" in r.stdout
    assert _snapshot(lab) == before


def test_diverged_replica_stays_broken_until_rebuilt(lab: Lab, tmp_path: Path):
    primary, (a, _b) = _replicas(lab)
    faults.inject(lab.inv, "diverge", a.name)
    c = client(lab.inv, primary)
    c.set("written-after-divergence", "1")
    c.close()
    # Sentinel repairs a wrong replicaof after failover-timeout (4 s in the test lab); this
    # fault must outlive that.
    time.sleep(lab.inv.settings.failover_timeout_ms / 1000 + 1.5)
    f = factsmod.node_facts(lab.inv, a)
    assert f.role == "replica" and f.link_up is False

    d = run_invoke("replica.diagnose", "--node", a.name, inventory=lab.inv.path)
    assert d.returncode == 1, d.stdout + d.stderr
    assert "authentication" in d.stdout and "master_link_status down" in d.stdout

    r = run_invoke(
        "replica.rebuild", "--node", a.name, "--yes", inventory=lab.inv.path, env=_env(tmp_path)
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    ra = client(lab.inv, a)
    try:
        assert ra.get("written-after-divergence") == "1"
        assert ra.config_get("replica-priority")["replica-priority"] == "100"
        assert ra.config_get("replica-announced")["replica-announced"] == "yes"
    finally:
        ra.close()
    assert replica_actions.sentinels_list_healthy(viewmod.take(lab.inv), a.name).ok


def test_killed_replica_rebuilt_under_traffic(fresh_lab: Lab, tmp_path: Path):
    """Acceptance: 200 000 session keys, the app simulator running, a killed replica rebuilt."""
    lab = fresh_lab
    lab.up(timeout=60)
    inv = lab.inv
    primary, (a, _b) = _replicas(lab)
    _load(inv, primary, 200_000)
    traffic = Traffic(inv, rate=500, keys=5_000, settle_s=5).start()
    try:
        time.sleep(0.5)
        lab.stop(a.name, kill=True)
        t0 = time.monotonic()
        r = run_invoke(
            "replica.rebuild", "--node", a.name, "--yes", inventory=inv.path, env=_env(tmp_path)
        )
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert took < 60
        time.sleep(0.5)
    finally:
        report = traffic.stop().to_dict()
    assert report["failed"] == 0, report["errors"]
    assert report["missing_writes"] == 0 and report["missing_keys"] == 0
    v = viewmod.take(inv)
    assert (
        cluster_actions.node_in_sync(v, a.name, max_lag_bytes=0).ok
        or cluster_actions.node_in_sync(v, a.name).ok
    )
    keys = replica_actions.keys_match(v, a.name)
    assert keys.ok and keys.data["replica_keys"] >= 205_000, keys.message
    assert _priority(inv, a) == "100"
    assert replica_actions.sentinels_list_healthy(viewmod.take(inv), a.name).ok


def test_rebuilding_replica_is_never_promoted(fresh_lab: Lab, tmp_path: Path):
    """Kill the primary during the sync: the only other candidate is the empty replica, and
    Sentinel must not promote it (it would wipe every session)."""
    lab = fresh_lab
    lab.up(timeout=60)
    inv = lab.inv
    primary, (a, b) = _replicas(lab)
    _load(inv, primary, 20_000)
    lab.stop(b.name, kill=True)  # a is now the only replica Sentinel could choose
    hold_full_sync_open(inv, primary, keys=20_000, seconds=20)
    lab.stop(a.name, kill=True)
    # Its disk lost too: with the snapshot of its first sync it would ask for a partial resync
    # from offset 1, which Valkey's 10 MB default backlog grants (Redis's 1 MB does not).
    faults.wipe_data(lab, a)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "replica.rebuild", "--node", a.name, "--yes",
         "--allow-write-outage", "--sync-timeout", "10", "--inventory", str(inv.path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
        env={**__import__("os").environ, "NO_COLOR": "1", "COLUMNS": "200", **_env(tmp_path)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            f = factsmod.node_facts(inv, a)
            # restarted by the rebuild, in the middle of the primary's (slowed) full sync
            if f.up and f.role == "replica" and not f.link_up and f.replica_priority == 0:
                break
            time.sleep(0.05)
        else:
            proc.kill()
            pytest.fail("the rebuild never restarted the replica: " + proc.communicate()[0][-3000:])
        assert f.replica_priority == 0
        lab.stop(primary.name, kill=True)
        # down-after is 1 s: Sentinel decides within a few seconds; watch for 6.
        end = time.monotonic() + 6
        while time.monotonic() < end:
            f = factsmod.node_facts(inv, a)
            assert f.role != "master", "Sentinel promoted the empty, rebuilding replica"
            time.sleep(0.1)
        cf = factsmod.gather(inv, detail=False)
        assert all(s.primary_name == primary.name for s in cf.sentinels if s.up)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out[-3000:]
    assert "kept" in out and "replica-priority 0" in out  # undo refused to make it promotable
    assert _priority(inv, a) == "0"
