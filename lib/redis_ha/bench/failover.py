"""`invoke bench.failover`: the ways to change the primary, side by side, under app traffic.

(a) plain `SENTINEL FAILOVER` (what `redis-cli -p 26379 SENTINEL FAILOVER mymaster` does),
(b) `failover.manual --yes` as an operator runs it: the `redis-ha` command in a process of its
own, through the runner (preflight, guard, the timed switch, verify, journal), (c) an automatic
failover after the primary is killed (SIGKILL); and where every Sentinel has it (Valkey 9+),
`SENTINEL FAILOVER <master> COORDINATED`, in which the old primary hands over itself
(FAILOVER). (d) `switch-only`, on request: the switch action called in-process without the
runner, to tell the procedure's overhead from the switch's. Each runs `runs` times,
round-robin, on a lab of its own (free ports, production timings) while the app simulator runs
every client (naive and recommended redis-py, ioredis where node is here) at `rate` ops/s each.
Every run starts from a settled cluster: healthy, the old primary back as a replica, no
failover in progress, no replica flagged down by any Sentinel.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha import journal as journalmod
from redis_ha import view as viewmod
from redis_ha.actions import failover as fo
from redis_ha.actions.registry import Context
from redis_ha.bench import machine, save
from redis_ha.conn import client
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab import node_traffic
from redis_ha.lab.cluster import Lab
from redis_ha.lab.node_traffic import NodeTraffic
from redis_ha.lab.ports import write_lab_inventory
from redis_ha.lab.traffic import Traffic
from redis_ha.servers import coordinated_failover, label

SCENARIOS = ("sentinel-failover", "failover-manual", "crash")
OPTIONAL = ("switch-only",)  # run only when asked for by name
# Run as well, by default, where every Sentinel has it (servers.coordinated_failover: Valkey 9+).
COORDINATED = "sentinel-coordinated"
LABELS = {
    "sentinel-failover": "plain SENTINEL FAILOVER",
    COORDINATED: "SENTINEL FAILOVER COORDINATED",
    "failover-manual": "failover.manual --yes (runner)",
    "switch-only": "failover.switch alone (no runner)",
    "crash": "primary killed (automatic)",
}
PROCEDURE_TIMEOUT_S = 120.0
CLIENTS = ("naive", "recommended", "ioredis")  # ioredis: examples/ioredis, when node is here
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
    v = viewmod.take(inv)
    f = v.facts
    if not v.health.healthy:
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


def run_manual(inv: Inventory, old: str) -> dict[str, Any]:
    """`redis-ha failover.manual --yes` in a process of its own, while the Sentinels' agreement
    is timed; the switch's figures from its journal. A failed run is a benchmark error, with
    the procedure's last lines. `agree_s` counts from the pause, not the process start."""
    jdir = inv.path.parent / "journal"
    env = {**os.environ, journalmod.ENV_DIR: str(jdir), "NO_COLOR": "1", "COLUMNS": "200"}
    argv = [sys.executable, "-m", "redis_ha", "failover.manual", "--yes"]
    t0, t0_wall = time.monotonic(), time.time()
    with subprocess.Popen(
        [*argv, "--inventory", str(inv.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as p:
        agree, new = wait_agree(inv, old, t0)
        out, _ = p.communicate(timeout=PROCEDURE_TIMEOUT_S)
    if p.returncode:
        tail = " | ".join(out.strip().splitlines()[-5:])
        raise LabError(f"failover.manual exited {p.returncode}: {tail}")
    info: dict[str, Any] = {"procedure_s": round(time.monotonic() - t0, 2)}
    for rec in journalmod.read(journalmod.runs(jdir)[-1]):
        if rec.get("event") == "step-end" and rec.get("step") == "switch":
            info.update((rec.get("state") or {}).get("switch") or {})
    if agree is not None and info.get("paused_at"):
        agree = round(agree - (info["paused_at"] - t0_wall), 3)
    info["agree_s"], info["new_primary"] = agree, new
    return info


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
        return {**info, **run_manual(inv, old.name)}
    elif scenario == "switch-only":
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


def traffic_for(lab: Lab, c: str, rate: float) -> Traffic | NodeTraffic:
    """One client's simulated app: redis-py (lab/traffic.py) or ioredis (lab/node_traffic.py)."""
    if c == "ioredis":
        return NodeTraffic(lab.inv, rate=rate, keys=2000, prefix=f"bench-{c}:")
    return Traffic(lab.inv, rate=rate, client=c, keys=2000, prefix=f"bench-{c}:", settle_s=30)


def one(
    lab: Lab, scenario: str, run: int, rate: float, log: Log, clients: tuple[str, ...] = CLIENTS
) -> list[Sample]:
    """One event under traffic from every client at once."""
    wait_settled(lab)
    traffic = {c: traffic_for(lab, c, rate) for c in clients}
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
    each = " | ".join(
        f"{x.client}: lost {x.lost_writes} stall {x.stall_s:.2f} s failed {x.failed}" for x in out
    )
    log(f"run {run} {LABELS[scenario]:<28} agree {info.get('agree_s')} s | {each}")
    return out


def _stat(values: list[float | int | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None]
    if not v:
        return {"median": None, "max": None, "min": None}
    return {"median": statistics.median(v), "max": max(v), "min": min(v)}


def summarize(samples: list[Sample]) -> list[dict[str, Any]]:
    """Median and max per scenario and client."""
    rows = []
    for sc in (SCENARIOS[0], COORDINATED, *SCENARIOS[1:], *OPTIONAL):
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
    clients: tuple[str, ...] | None = None,
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
    skipped: dict[str, str] = {}
    if clients is None:  # every client that can run here; the others said out loud
        why = node_traffic.available()
        clients = tuple(c for c in CLIENTS if c != "ioredis" or why is None)
        if why:
            skipped["ioredis"] = why
            log(f"SKIPPED the ioredis client: {why}")
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
                samples += one(lab, sc, i, rate, log, clients)
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
        "clients": list(clients),
        "clients_skipped": skipped,
        "summary": summarize(samples),
        "samples": [asdict(s) for s in samples],
    }
    return save(result, started, out_dir)
