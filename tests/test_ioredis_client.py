"""The app's own client: ioredis with the recommended settings (examples/ioredis/options.mjs)
sees no failed request and loses no acknowledged write through failover.manual and through a
primary crash. Real redis-server / redis-sentinel processes and a real Node process; skipped
loudly where node or the example's node_modules are missing (scripts/setup installs them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha.lab import node_traffic
from redis_ha.lab.cluster import Lab
from redis_ha.lab.node_traffic import NodeTraffic

from .conftest import run_invoke

pytestmark = pytest.mark.lab

WHY = node_traffic.available()
needs_node = pytest.mark.skipif(
    WHY is not None, reason=f"SKIPPED: the ioredis client cannot run here: {WHY}"
)


def wait_healthy(lab: Lab, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not healthmod.assess(lab.inv, factsmod.gather(lab.inv)).healthy:
        assert time.monotonic() < deadline, "the lab did not become healthy again"
        time.sleep(0.3)


def assert_nothing_failed_or_lost(rep: node_traffic.NodeReport) -> None:
    assert rep.acked_writes > 1000, rep.to_dict()
    assert rep.failed == 0, rep.errors
    assert rep.missing_writes == 0, rep.to_dict()


def under_ioredis(lab: Lab, prefix: str, event: Callable[[], None]) -> node_traffic.NodeReport:
    """`event` with the Node client writing 500/s from 1.5 s before to 1.5 s after it."""
    t = NodeTraffic(lab.inv, rate=500, keys=1000, prefix=prefix).start()
    try:
        time.sleep(1.5)
        event()
        time.sleep(1.5)
    finally:
        rep = t.stop()
    return rep


@needs_node
def test_ioredis_through_failover_manual_fails_nothing_and_loses_nothing(lab: Lab) -> None:
    old = lab.current_primary().name
    runs = []

    def switch() -> None:
        runs.append(run_invoke("failover.manual", "--yes", inventory=lab.inv.path, timeout=120))

    rep = under_ioredis(lab, "ioredis-manual:", switch)
    assert runs[0].returncode == 0, runs[0].stdout + runs[0].stderr
    assert lab.current_primary().name != old
    assert_nothing_failed_or_lost(rep)


@needs_node
def test_ioredis_through_a_primary_crash_fails_nothing_and_loses_nothing(lab: Lab) -> None:
    old = lab.current_primary().name

    def crash() -> None:
        lab.stop(old, kill=True)
        deadline = time.monotonic() + 30
        while lab.current_primary().name == old:
            assert time.monotonic() < deadline, "Sentinel did not fail over"
            time.sleep(0.2)

    try:
        rep = under_ioredis(lab, "ioredis-crash:", crash)
    finally:
        lab.up(timeout=60)
    wait_healthy(lab)
    assert_nothing_failed_or_lost(rep)
    assert rep.write_stall_s > 0.5  # the crash was seen: writes waited for the new primary


RECONNECTS = """
import("./options.mjs").then((m) => {
  let t = 0;
  const f = m.reconnectStrategy(() => t);
  const out = [f(1), f(2), f(1)];
  t = 499; out.push(f(1));
  t = 500; out.push(f(1), f(3), f(30));
  console.log(JSON.stringify(out));
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="SKIPPED: node is not installed")
def test_the_first_reconnect_is_immediate_but_never_a_loop() -> None:
    """Immediate after a drop; again within 500 ms (the attempt count restarts after every
    ready connection) it is 50 ms x attempt, at most 500 ms."""
    p = subprocess.run(
        ["node", "--input-type=module", "-e", RECONNECTS],
        cwd=node_traffic.project_dir(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [0, 100, 50, 50, 0, 150, 500]
