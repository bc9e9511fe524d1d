"""Split-brain scenarios in the lab, each a real fault: used by `drill.splitbrain` and the tests.

- partition: the primary is cut off from Sentinels and replicas (lab/partition.py); Sentinel fails
  over; clients that still reach the old primary write there until min-replicas-max-lag passes.
- freeze: the primary is frozen (SIGSTOP) until Sentinel fails over, then resumed.
- promote: a replica is promoted by hand (REPLICAOF NO ONE).
- sentinel: a Sentinel is restarted with the config it had before a failover (old primary, old
  epoch) plus a peer that no longer exists.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field

import redis

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha.choices import SPLITBRAIN_SCENARIOS
from redis_ha.cli.names import command
from redis_ha.conn import call, client
from redis_ha.errors import LabError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab import partition
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports

SCENARIOS = SPLITBRAIN_SCENARIOS


def _majority_primary(inv: Inventory) -> str | None:
    addr, _ = healthmod.authoritative_primary(factsmod.gather(inv, detail=False))
    return inv.name_of(addr) if addr else None


def wait_new_primary(inv: Inventory, old: str, timeout: float = 30.0) -> str:
    """Wait until a Sentinel majority names a primary other than `old`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _majority_primary(inv)
        if now and now != old:
            return now
        time.sleep(0.1)
    raise LabError(f"the Sentinels did not fail over away from {old} within {timeout:.0f} s")


@dataclass
class Writer:
    """One client writing new sessions straight to one node's own port (the isolated side)."""

    inv: Inventory
    node: Endpoint
    prefix: str = "session:stale:"
    interval_s: float = 0.01
    acked: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        c = client(self.inv, self.node, timeout=1.0)
        run = secrets.token_hex(3)
        i = 0
        try:
            while not self._stop.is_set():
                key = f"{self.prefix}{run}:{i}"
                value = json.dumps({"v": 1, "ts": time.time(), "run": run, "user": i})
                try:
                    c.set(key, value)
                    self.acked.append(key)
                except redis.RedisError as e:
                    kind = str(e).split()[0] if str(e) else type(e).__name__
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                i += 1
                self._stop.wait(self.interval_s)
        finally:
            c.close()

    def stop(self) -> list[str]:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        return self.acked


def partition_primary(
    lab: Lab, old: Endpoint | None = None, timeout: float = 30.0
) -> tuple[str, str]:
    """Isolate the primary (`old`, else the current one) until another is promoted: (old, new)."""
    partition.require_partitionable(lab)
    name = (old or lab.current_primary()).name
    partition.isolate(lab, name)
    return name, wait_new_primary(lab.inv, name, timeout)


def freeze_and_return(lab: Lab, timeout: float = 30.0) -> tuple[str, str]:
    """Freeze the primary until Sentinel fails over, then resume it: (old, new)."""
    old = lab.current_primary().name
    lab.signal(old, signal.SIGSTOP)
    try:
        new = wait_new_primary(lab.inv, old, timeout)
    finally:
        lab.signal(old, signal.SIGCONT)
    return old, new


def manual_promotion(lab: Lab, node: str | None = None) -> str:
    """Promote a replica by hand, as a well-meaning operator might: returns its name."""
    primary = lab.current_primary().name
    name = node or next(n.name for n in lab.inv.nodes if n.name != primary)
    if name == primary:
        raise LabError(f"{name} is already the primary")
    call(lab.inv, lab.inv.node(name), "REPLICAOF", "NO", "ONE")
    return name


def sentinels_down(lab: Lab, n: int) -> list[str]:
    """Kill the last `n` Sentinels (SIGKILL): with 2 of 3 gone no failover can be authorised."""
    names = [s.name for s in lab.inv.sentinels[-n:]]
    for name in names:
        lab.stop(name, kill=True)
    return names


def all_nodes_down(lab: Lab) -> list[str]:
    """Kill every Redis node (SIGKILL), Sentinels left running: nothing serves sessions."""
    names = [n.name for n in lab.inv.nodes]
    for name in names:
        lab.stop(name, kill=True)
    return names


def disagreeing_sentinel(lab: Lab, name: str | None = None, timeout: float = 30.0) -> str:
    """Restart a Sentinel with its pre-failover config and a peer that no longer exists."""
    inv = lab.inv
    s = inv.sentinel(name) if name else inv.sentinels[-1]
    conf = lab.conf(s.name)
    if not conf.exists():
        raise LabError(f"{s.name} has no config yet: start the lab first ({command('lab.up')})")
    lab.stop(s.name)
    old_conf = conf.read_text()
    old = lab.current_primary().name
    via = next(x for x in inv.sentinels if x.name != s.name)
    call(inv, via, "SENTINEL", "FAILOVER", inv.master_name)
    new = inv.node(wait_new_primary(inv, old, timeout))
    # Demote the old primary at once, as a planned switchover does (Sentinel would take ~10 s).
    call(inv, inv.node(old), "REPLICAOF", *map(str, new.announced))
    ghost = free_ports(1)[0]
    conf.write_text(
        old_conf
        + f"sentinel known-sentinel {inv.master_name} 127.0.0.1 {ghost} {secrets.token_hex(20)}\n"
    )
    conf.chmod(0o600)
    lab.start_sentinel(s, primary=inv.node(old))
    return s.name


def run(lab: Lab, scenario: str, write_s: float = 0.0) -> dict[str, object]:
    """Run one scenario; for `partition`, optionally keep a client writing to the old primary."""
    if scenario not in SCENARIOS:
        raise LabError(f"unknown scenario {scenario!r} (choose from {', '.join(SCENARIOS)})")
    out: dict[str, object] = {"scenario": scenario}
    if scenario == "partition":
        partition.require_partitionable(lab)  # before any write reaches the lab
        old = lab.current_primary()
        w = Writer(lab.inv, old).start() if write_s > 0 else None
        try:
            old_name, new = partition_primary(lab, old)
            if w:
                time.sleep(write_s)
        finally:
            if w:
                w.stop()
        if w:
            out.update(acked_on_isolated=len(w.acked), write_errors=w.errors)
        out.update(isolated=old_name, old_primary=old_name, new_primary=new)
    elif scenario == "freeze":
        old_name, new = freeze_and_return(lab)
        out.update(old_primary=old_name, new_primary=new)
    elif scenario == "promote":
        out.update(promoted=manual_promotion(lab))
    else:
        out.update(sentinel=disagreeing_sentinel(lab))
    return out
