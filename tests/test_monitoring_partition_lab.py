"""The heartbeat lag measures something: a replica cut off by the lab's partition proxies for 3 s
(its own port still answers clients) reads at least 1000 ms during the cut, under 100 ms around it.
"""

from __future__ import annotations

import time

import pytest

from redis_ha.lab import partition
from redis_ha.lab.cluster import Lab
from redis_ha.lab.traffic import Traffic

from .test_monitoring_lab import watch_once
from .test_splitbrain_lab import plab, plab_session  # noqa: F401 - the partitionable lab fixtures

pytestmark = pytest.mark.lab


def lags(frame: dict) -> dict[str, float | None]:
    return {r["name"]: r["lag_ms"] for r in frame["replicas"]}


def test_a_cut_off_replica_reads_at_least_a_second_of_lag(plab: Lab) -> None:  # noqa: F811
    inv = plab.inv
    t = Traffic(inv, rate=1000, keys=2000, prefix="watch-split:")
    t.start()
    try:
        time.sleep(1.0)
        before = watch_once(inv)
        assert before["heartbeat"]["state"] == "ok", before["heartbeat"]
        victim, other = sorted(lags(before))
        assert all(v is not None and v < 100 for v in lags(before).values()), lags(before)
        partition.isolate(plab, victim)
        t_cut = time.monotonic()
        time.sleep(1.2)
        during = watch_once(inv)
        read_at = time.monotonic() - t_cut
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t_cut)))
        partition.heal(plab)
        cut_s = time.monotonic() - t_cut
        deadline = time.monotonic() + 20
        while True:
            after = watch_once(inv)
            back = lags(after)
            if all(v is not None and v < 100 for v in back.values()) and len(back) == 2:
                break
            assert time.monotonic() < deadline, f"lag did not recover after healing: {back}"
            time.sleep(0.5)
    finally:
        partition.heal(plab)
        rep = t.stop()
    print(
        f"cut {cut_s:.1f} s: before {lags(before)}, during (read {read_at:.1f} s into the cut) "
        f"{lags(during)}, after {lags(after)}"
    )
    v = next(n for n in during["nodes"] if n["name"] == victim)
    assert v["up"], v  # it still answers clients: only the cluster links are cut
    assert lags(during)[victim] is not None and lags(during)[victim] >= 1000, during["replicas"]
    assert lags(during)[other] is not None and lags(during)[other] < 100, during["replicas"]
    assert during["heartbeat"]["state"] == "ok"  # the other replica keeps the primary writable
    assert rep.failed == 0, rep.errors
