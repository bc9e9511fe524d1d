"""Split-brain against real processes: partitions through the lab proxies, detect, recover.

One partitionable lab (nodes announce proxy ports) is shared by this module and repaired after
each test; fast Sentinel timings (down-after 2000 ms).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha import splitbrain as sb
from redis_ha.conn import client
from redis_ha.errors import LabError
from redis_ha.health import authoritative_primary
from redis_ha.lab import partition, scenarios
from redis_ha.lab.cluster import Lab
from redis_ha.lab.traffic import Traffic
from tests.conftest import run_invoke

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def plab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    path = partition.write_partitionable_inventory(tmp_path_factory.mktemp("splitlab"))
    lab = Lab(inventory.load(path))
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        lab.down()
        assert partition.proxy_pid(lab) is None


@pytest.fixture
def plab(plab_session: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("REDIS_HA_JOURNAL_DIR", str(tmp_path / "journal"))
    plab_session.up(timeout=60)
    yield plab_session
    partition.heal(plab_session)
    try:
        plab_session.up(timeout=30)
        _wait_consistent(plab_session.inv, 30)
    except Exception:
        plab_session.down()
        plab_session.up(timeout=60)


def _detect(inv: inventory.Inventory) -> sb.Report:
    return sb.detect(inv, factsmod.gather(inv))


def _wait_consistent(inv: inventory.Inventory, timeout: float) -> sb.Report:
    deadline = time.monotonic() + timeout
    while True:
        rep = _detect(inv)
        if rep.consistent and not rep.partitioned:
            return rep
        if time.monotonic() > deadline:
            return rep
        time.sleep(0.2)


def _detect_json(inv: inventory.Inventory) -> tuple[int, dict]:
    r = run_invoke("splitbrain.detect", "--json", inventory=inv.path)
    return r.returncode, json.loads(r.stdout)


def _recover(inv: inventory.Inventory, *extra: str):
    r = run_invoke("splitbrain.recover", "--yes", *extra, inventory=inv.path, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return r


def _keys_on(inv: inventory.Inventory, node: str, keys: list[str]) -> list[str]:
    """The subset of `keys` missing on `node`."""
    c = client(inv, inv.node(node), timeout=5)
    try:
        missing = []
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            got = c.mget(batch)
            missing += [k for k, v in zip(batch, got, strict=True) if v is None]
        return missing
    finally:
        c.close()


def test_detect_healthy_and_one_node_down(plab: Lab) -> None:
    inv = plab.inv
    r = run_invoke("splitbrain.detect", inventory=inv.path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "consistent" in r.stdout
    primary = plab.current_primary().name
    victim = next(n.name for n in inv.nodes if n.name != primary)
    plab.stop(victim, kill=True)
    code, out = _detect_json(inv)
    assert code == 0 and out["split_brain"] is False and out["consistent"] is True
    assert any(victim in n and "down" in n for n in out["notes"])


def test_partition_cuts_cluster_links_but_not_clients(plab: Lab) -> None:
    inv = plab.inv
    primary = plab.current_primary()
    replica = next(n for n in inv.nodes if n != primary)
    r = run_invoke("lab.partition", "--isolate", replica.name, inventory=inv.path)
    assert r.returncode == 0, r.stderr
    # Both directions: the primary loses the replica's ACKs, the replica's link to it is dead,
    # and the Sentinels (through the replica's proxy) see it down; its own port still answers.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        f = factsmod.gather(inv)
        rep = sb.detect(inv, f)
        p = f.node(primary.name)
        lag = next((x.lag_s for x in p.replicas if x.name == replica.name), 99)
        if replica.name in rep.partitioned and lag >= 2:
            break
        time.sleep(0.2)
    assert f.node(replica.name).up
    assert replica.name in rep.partitioned
    assert lag >= 2  # no REPLCONF ACK crosses the cut
    assert not rep.split_brain  # a cut-off replica is not split-brain
    r = run_invoke("lab.heal", inventory=inv.path)
    assert r.returncode == 0 and replica.name in r.stdout
    assert _wait_consistent(inv, 20).consistent


def test_partition_refused_on_plain_and_non_lab_inventories(lab_inv, tmp_path: Path) -> None:
    r = run_invoke("lab.partition", "--isolate", "redis-1", inventory=lab_inv.path)
    assert r.returncode != 0 and "no partition proxies" in r.stderr
    assert "Traceback" not in r.stderr
    data = json.loads(json.dumps(__import__("yaml").safe_load(Path(lab_inv.path).read_text())))
    data["lab"] = False
    p = tmp_path / "prod.yaml"
    p.write_text(json.dumps(data))
    r = run_invoke("lab.partition", "--isolate", "redis-1", inventory=p)
    assert r.returncode != 0 and "not marked 'lab: true'" in r.stderr
    assert "Traceback" not in r.stderr


def test_isolated_primary_split_brain_detect_recover_heal(plab: Lab) -> None:
    """The acceptance scenario: writes acknowledged on both sides all survive."""
    inv = plab.inv
    old = plab.current_primary()
    app = Traffic(inv, rate=200, keys=400, workers=2, settle_s=15).start()  # via Sentinel
    try:
        writer = scenarios.Writer(inv, old).start()  # a client that still reaches the old primary
        time.sleep(0.3)
        partition.isolate(plab, old.name)
        # The split exists once the Sentinel majority names another node while the old one still
        # says it is primary (and acknowledges writes).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            f = factsmod.gather(inv, detail=False)
            auth, _ = authoritative_primary(f)
            if auth and inv.name_of(auth) != old.name and f.node(old.name).role == "master":
                break
            time.sleep(0.05)
        t_split = time.monotonic()
        code, out = _detect_json(inv)
        took = time.monotonic() - t_split
        assert code == 1 and out["split_brain"] is True, out
        assert out["stale_primaries"] == [old.name]
        assert took < 5.0, f"detect --json took {took:.2f} s after the split"  # whole process
        new = scenarios.wait_new_primary(inv, old.name, 30)
        # The authoritative side takes writes too (cluster-side clients).
        cluster_side = scenarios.Writer(inv, inv.node(new), prefix="session:main:").start()
        time.sleep(2)
        stale_acked = writer.stop()
        main_acked = cluster_side.stop()
        assert stale_acked and main_acked

        _recover(inv)  # before healing
        rep = _detect(inv)
        assert rep.consistent and rep.authoritative == new
        assert [p["name"] for p in rep.primaries] == [new]
        assert _keys_on(inv, new, stale_acked + main_acked) == []

        partition.heal(plab)
        rep = _wait_consistent(inv, 30)
        assert rep.consistent and rep.authoritative == new and not rep.partitioned
        assert _keys_on(inv, new, stale_acked + main_acked) == []
        report = app.stop().to_dict()
        assert report["acked_writes"] > 0 and report["missing_keys"] == 0, report
        assert factsmod.gather(inv).node(old.name).role == "replica"
    finally:
        app.stop_event.set()  # no worker thread outlives a failed test


def test_disagreeing_sentinel_repaired_with_quorum_kept(plab: Lab) -> None:
    inv = plab.inv
    name = scenarios.disagreeing_sentinel(plab)
    code, out = _detect_json(inv)
    assert code == 1 and name in out["stale_peer_sentinels"] + out["disagreeing_sentinels"]
    watch = [s for s in inv.sentinels if s.name != name][0]
    bad: list[str] = []
    stop = threading.Event()

    def monitor() -> None:
        c = client(inv, watch, timeout=1)
        try:
            while not stop.is_set():
                try:
                    c.execute_command("SENTINEL", "CKQUORUM", inv.master_name)
                except redis.RedisError as e:
                    bad.append(str(e))
                stop.wait(0.1)
        finally:
            c.close()

    t = threading.Thread(target=monitor, daemon=True)
    t.start()
    try:
        r = _recover(inv)
    finally:
        stop.set()
        t.join(5)
    assert "SENTINEL RESET" in r.stdout or "MONITOR" in r.stdout
    assert bad == []
    code, out = _detect_json(inv)
    assert code == 0 and out["consistent"], out


def test_manual_promotion_detected_dry_run_then_recovered(plab: Lab) -> None:
    inv = plab.inv
    promoted = scenarios.manual_promotion(plab)
    code, out = _detect_json(inv)
    assert code == 1 and out["stale_primaries"] == [promoted]

    r = run_invoke("splitbrain.recover", "--dry-run", inventory=inv.path)
    assert r.returncode == 0, r.stdout[-2000:]
    assert f"make {promoted} replicate from" in r.stdout
    assert factsmod.gather(inv).node(promoted).role == "master"
    c = client(inv, inv.node(promoted), timeout=1.0)
    try:  # not paused: the write is refused at once (no replica), it does not block
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            c.set("session:dry-run-probe", "x")
    finally:
        c.close()
    r = run_invoke("splitbrain.recover", "--yes", "--policy", "bogus", inventory=inv.path)
    assert r.returncode != 0 and "unknown --policy" in r.stderr and "Traceback" not in r.stderr

    _recover(inv)
    rep = _detect(inv)
    assert rep.consistent and rep.authoritative != promoted


def test_freeze_and_return_ends_consistent(plab: Lab) -> None:
    inv = plab.inv
    old, new = scenarios.freeze_and_return(plab)
    seen_split = _detect(inv).split_brain  # the returned primary may still say master briefly
    _recover(inv)
    rep = _wait_consistent(inv, 20)
    assert rep.consistent and rep.authoritative == new, (seen_split, rep.findings)
    assert factsmod.gather(inv).node(old).role == "replica"


def test_sentinel_remonitor_keeps_settings_and_quorum(plab: Lab) -> None:
    """The REMOVE + MONITOR repair (for a Sentinel naming the wrong primary), run directly."""
    from redis_ha.actions import splitbrain as sba
    from redis_ha.actions.registry import Context

    inv = plab.inv
    auth = plab.current_primary()
    target = inv.sentinels[-1]
    ctx = Context(inv=inv, yes=True, log=lambda _m: None)
    how = sba._repair_one(ctx, target, auth, "remonitor")
    assert "MONITOR" in how
    sba._wait_settled(ctx, target.name, "{}:{}".format(*auth.announced), 20)
    s = factsmod.gather(inv).sentinel(target.name)
    assert s.primary_name == auth.name and s.quorum_ok
    assert s.config["down-after-milliseconds"] == str(inv.settings.down_after_ms)
    assert s.config["failover-timeout"] == str(inv.settings.failover_timeout_ms)
    assert _detect(inv).consistent


def test_partition_scenario_writes_to_the_isolated_primary(plab: Lab) -> None:
    old = plab.current_primary().name
    out = scenarios.run(plab, "partition", write_s=1.0)
    assert out["isolated"] == out["old_primary"] == old and out["new_primary"] != old
    assert out["acked_on_isolated"], out  # a count, > 0


def test_partition_scenario_refused_before_any_write(lab: Lab) -> None:
    """On a lab without proxies nothing is written, and no writer is left running."""
    with pytest.raises(LabError, match="no partition proxies"):
        scenarios.run(lab, "partition", write_s=5.0)
    time.sleep(0.3)
    c = client(lab.inv, lab.current_primary(), timeout=2)
    try:
        assert list(c.scan_iter(match="session:stale:*")) == []
    finally:
        c.close()
