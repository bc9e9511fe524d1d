"""`invoke bench.failover`: the ways to change the primary, side by side, under app traffic.

(a) plain `SENTINEL FAILOVER` (what `redis-cli -p 26379 SENTINEL FAILOVER mymaster` does),
(b) the zero-loss switch of `failover.manual --yes`, (c) an automatic failover after the primary
is killed (SIGKILL); and where every Sentinel has it (Valkey 9+), `SENTINEL FAILOVER <master>
COORDINATED`, in which the old primary hands over itself (FAILOVER). Each runs `runs` times,
round-robin, on a lab of its own (free ports, production timings) while the app simulator runs
both clients (naive and recommended) at `rate` ops/s each. Every run starts from a settled
cluster: healthy, the old primary back as a replica, no failover in progress, no replica
flagged down by any Sentinel.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import inventory
from redis_ha import view as viewmod
from redis_ha.actions import failover as fo
from redis_ha.actions.registry import Context
from redis_ha.bench import machine, save
from redis_ha.conn import client
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory
from redis_ha.lab.traffic import Traffic
from redis_ha.servers import coordinated_failover, label

SCENARIOS = ("sentinel-failover", "failover-manual", "crash")
# Run as well, by default, where every Sentinel has it (servers.coordinated_failover: Valkey 9+).
COORDINATED = "sentinel-coordinated"
LABELS = {
    "sentinel-failover": "plain SENTINEL FAILOVER",
    COORDINATED: "SENTINEL FAILOVER COORDINATED",
    "failover-manual": "failover.manual --yes",
    "crash": "primary killed (automatic)",
}
CLIENTS = ("naive", "recommended")
BASELINE_S = 2.0  # traffic before the event
AFTER_S = 2.0  # traffic after the cluster is healthy again
AGREE_TIMEOUT_S = 40.0
RECOVER_TIMEOUT_S = 40.0

Log = Callable[[str], None]


@dataclass
class Sample:
    """One client's view of one event."""

    scenario: str
    run: int
    client: str
    lost_writes: int | None
    stall_s: float
    failed: int
    errors: dict[str, int]
    agree_s: float | None
    hit_rate_after: float | None
    ops_per_s: float
    acked_writes: int
    event: dict[str, Any] = field(default_factory=dict)


def settled(inv: Inventory) -> bool:
    """Healthy, and no Sentinel flags any node down or is in the middle of a failover."""
    f = factsmod.gather(inv)
    if not healthmod.assess(inv, f).healthy:
        return False
    for s in f.sentinels:
        if not s.up or s.failing_over or any(x in s.flags for x in ("s_down", "o_down")):
            return False
        for r in s.replicas:
            flags = str(r.get("flags", ""))
            if "s_down" in flags or "disconnected" in flags:
                return False
            if r.get("master-link-status") != "ok":
                return False
    return True


def wait_settled(lab: Lab, timeout: float = RECOVER_TIMEOUT_S) -> float:
    """Start what is not running, then wait for a settled cluster; seconds it took."""
    t0 = time.monotonic()
    lab.up(timeout=timeout)
    while not settled(lab.inv):
        if time.monotonic() - t0 > timeout:
            raise LabError(f"the bench lab did not settle within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def wait_agree(inv: Inventory, old: str, t0: float) -> tuple[float | None, str | None]:
    """Seconds from t0 until every Sentinel names the same primary other than `old`."""
    clients = [client(inv, s, timeout=0.3) for s in inv.sentinels]
    try:
        while time.monotonic() - t0 < AGREE_TIMEOUT_S:
            names = set()
            for c in clients:
                try:
                    a = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", inv.master_name)
                    names.add(inv.name_of(f"{a[0]}:{a[1]}") if a else None)
                except (redis.RedisError, OSError):
                    names.add(None)
            if len(names) == 1 and None not in names and old not in names:
                return round(time.monotonic() - t0, 3), names.pop()
            time.sleep(0.01)
        return None, None
    finally:
        for c in clients:
            c.close()


def event(lab: Lab, scenario: str) -> dict[str, Any]:
    """Cause the event; returns what was done and how long until all Sentinels agreed."""
    inv = lab.inv
    old = lab.current_primary()
    t0 = time.monotonic()
    info: dict[str, Any] = {"old_primary": old.name}
    if scenario in ("sentinel-failover", COORDINATED):
        first = inv.sentinels[0]
        c = client(inv, first, timeout=2.0)
        try:
            extra = ("COORDINATED",) if scenario == COORDINATED else ()
            c.execute_command("SENTINEL", "FAILOVER", inv.master_name, *extra)
        finally:
            c.close()
        info["via"] = first.name
    elif scenario == "failover-manual":
        v = viewmod.take(inv)
        problems = fo.preflight(v, None)
        if problems:
            raise LabError("the bench lab refuses a switch: " + "; ".join(problems))
        r = fo.switchover(Context(inv=inv, log=lambda _m: None), fo.plan_switch(v))
        info.update(r.to_dict())
    elif scenario == "crash":
        lab.stop(old.name, kill=True)
        info["killed"] = old.name
    else:
        raise ValueError(scenario)
    info["agree_s"], info["new_primary"] = wait_agree(inv, old.name, t0)
    return info


def one(lab: Lab, scenario: str, run: int, rate: float, log: Log) -> list[Sample]:
    """One event under traffic from both clients."""
    wait_settled(lab)
    traffic = {
        c: Traffic(lab.inv, rate=rate, client=c, keys=2000, prefix=f"bench-{c}:", settle_s=30)
        for c in CLIENTS
    }
    for t in traffic.values():
        t.start()
    try:
        time.sleep(BASELINE_S)
        info = event(lab, scenario)
        wait_settled(lab)
        time.sleep(AFTER_S)
    finally:
        reports = {c: t.stop() for c, t in traffic.items()}
    out = []
    for c, rep in reports.items():
        out.append(
            Sample(
                scenario=scenario,
                run=run,
                client=c,
                lost_writes=rep.missing_writes,
                stall_s=rep.write_stall_s,
                failed=rep.failed,
                errors=dict(rep.errors),
                agree_s=info.get("agree_s"),
                hit_rate_after=rep.hit_rate.get("after_failover"),
                ops_per_s=rep.ops_per_s,
                acked_writes=rep.acked_writes,
                event=info,
            )
        )
    n, r = out[0], out[1]
    log(
        f"run {run} {LABELS[scenario]:<28} agree {info.get('agree_s')} s | naive: lost "
        f"{n.lost_writes} stall {n.stall_s:.2f} s failed {n.failed} | recommended: lost "
        f"{r.lost_writes} stall {r.stall_s:.2f} s failed {r.failed}"
    )
    return out


def _stat(values: list[float | int | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None]
    if not v:
        return {"median": None, "max": None, "min": None}
    return {"median": statistics.median(v), "max": max(v), "min": min(v)}


def summarize(samples: list[Sample]) -> list[dict[str, Any]]:
    """Median and max per scenario and client."""
    rows = []
    for sc in (SCENARIOS[0], COORDINATED, *SCENARIOS[1:]):
        for c in CLIENTS:
            s = [x for x in samples if x.scenario == sc and x.client == c]
            if not s:
                continue
            rows.append(
                {
                    "scenario": sc,
                    "label": LABELS[sc],
                    "client": c,
                    "runs": len(s),
                    "lost_writes": _stat([x.lost_writes for x in s]),
                    "stall_s": _stat([x.stall_s for x in s]),
                    "failed": _stat([x.failed for x in s]),
                    "agree_s": _stat([x.agree_s for x in s]),
                    "hit_rate_after": _stat([x.hit_rate_after for x in s]),
                    "ops_per_s": _stat([x.ops_per_s for x in s]),
                    "runs_with_loss": sum(1 for x in s if x.lost_writes),
                }
            )
    return rows


def run_bench(
    *,
    runs: int = 5,
    rate: float = 1000,
    scenarios: tuple[str, ...] = SCENARIOS,
    out_dir: Path | None = Path("bench/results"),
    log: Log = print,
    down_after_ms: int = 3000,
    failover_timeout_ms: int = 10000,
    server: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark on a fresh lab of its own; returns (and writes) the result object.

    `server` picks the binaries (redis, valkey or a folder; lab/binaries.py).
    """
    state = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    inv = inventory.load(
        write_lab_inventory(
            state,
            down_after_ms=down_after_ms,
            failover_timeout_ms=failover_timeout_ms,
            single=False,
        )
    )
    lab = Lab(inv, server=server)
    started = datetime.now(UTC)
    info = machine()
    samples: list[Sample] = []
    served, coordinated = None, None
    try:
        lab.up(timeout=60)
        cf = factsmod.gather(inv)
        served = label(cf.nodes[0].server, cf.nodes[0].version)
        coordinated = coordinated_failover(cf)
        has = "available" if coordinated.available else "absent"
        log(f"server {served}; coordinated SENTINEL FAILOVER {has}: {coordinated.reasons[0]}")
        if COORDINATED in scenarios and not coordinated.available:
            raise LabError(f"{COORDINATED}: not on this server ({coordinated.reasons[0]})", code=2)
        if scenarios == SCENARIOS and coordinated.available:
            scenarios = (SCENARIOS[0], COORDINATED, *SCENARIOS[1:])
        log(
            f"bench lab up on ports {', '.join(str(n.port) for n in inv.nodes)} "
            f"(down-after {down_after_ms} ms); {runs} run(s) x {len(scenarios)} scenario(s), "
            f"{rate:g} ops/s per client"
        )
        for i in range(1, runs + 1):
            for sc in scenarios:
                samples += one(lab, sc, i, rate, log)
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)
    result = {
        "bench": "failover",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "machine": {**info, "server": served},
        "coordinated_failover": coordinated.to_dict() if coordinated else None,
        "settings": {
            "down_after_ms": down_after_ms,
            "failover_timeout_ms": failover_timeout_ms,
            "min_replicas_to_write": inv.settings.min_replicas_to_write,
            "repl_diskless_sync_delay": inv.settings.repl_diskless_sync_delay,
            "pause_ms": f"down-after - {fo.PAUSE_BELOW_DOWN_AFTER_MS}, "
            f"within {fo.PAUSE_MIN_MS}..{fo.PAUSE_MAX_MS}",
        },
        "runs": runs,
        "rate_per_client": rate,
        "summary": summarize(samples),
        "samples": [asdict(s) for s in samples],
    }
    return save(result, started, out_dir)
