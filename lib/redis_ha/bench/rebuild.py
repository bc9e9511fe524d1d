"""`invoke bench.rebuild`: how long `replica.rebuild` takes, next to Redis's own full-sync time.

For each dataset size, on a lab of its own (production settings), the same replica is rebuilt
twice from a killed state:
  floor:   the node started empty with `--replicaof <primary>` by hand (no tool), timed until
           `master_link_status:up` and not loading: what Redis itself needs for the full sync;
  rebuild: `invoke replica.rebuild --node <it> --yes` run as an operator would (a new Python
           process), timed until it exits, and, from its journal, until the full-sync step is
           verified (the data is safe; the rest is restoring the priority and waiting for every
           Sentinel to list the replica again, which takes up to one Sentinel INFO period, 10 s).
Data is generated with pipelined MSETs of ~1 KB incompressible (random base64) session values.
No app traffic runs, so the two timings compare like with like.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha.bench import machine, save
from redis_ha.conn import client
from redis_ha.errors import HAError, LabError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab.cluster import Lab, wait_port_free
from redis_ha.lab.ports import write_lab_inventory

VALUE_BYTES = 1000
KEY_OVERHEAD = 90  # approximate used_memory per key besides the value (dict entry, sds, robj)
SYNC_TIMEOUT_S = 900.0

Log = Callable[[str], None]


def parse_sizes(text: str) -> list[float]:
    """'0.1,0.5,1' -> sorted GB values; bad input is one readable error."""
    try:
        sizes = sorted({float(x) for x in str(text).split(",") if x.strip()})
    except ValueError:
        raise HAError(
            f"--sizes must be comma-separated GB values like 0.1,0.5,1, got {text!r}"
        ) from None
    if not sizes or sizes[0] <= 0 or sizes[-1] > 8:
        raise HAError(f"--sizes must be between 0 and 8 GB, got {text!r}")
    return sizes


def fill(inv: Inventory, primary: Endpoint, target_bytes: int, start: int = 0) -> int:
    """Add session keys until used_memory reaches `target_bytes`; returns the next key index."""
    c = client(inv, primary, timeout=30)
    # Incompressible values: the RDB compresses each string (LZF), so "vvvv..." would shrink a
    # GB to a few MB on the wire and flatter every timing. Random base64 is the worst case.
    pool = [base64.b64encode(os.urandom(VALUE_BYTES * 3 // 4)).decode() for _ in range(256)]
    i = start
    try:
        while True:
            used = int(c.info("memory")["used_memory"])
            missing = target_bytes - used
            if missing <= 0:
                return i
            n = max(1000, missing // (VALUE_BYTES + KEY_OVERHEAD))
            p = c.pipeline(transaction=False)
            end = i + n
            while i < end:
                batch = min(200, end - i)
                p.mset({f"session:{k:09d}": pool[k % 256] for k in range(i, i + batch)})
                i += batch
                if len(p) >= 100:
                    p.execute()
            p.execute()
    finally:
        c.close()


def wait_linked(lab: Lab, node: Endpoint, timeout: float = SYNC_TIMEOUT_S) -> float:
    """Poll every 10 ms until the node's link is up and it is not loading; returns monotonic."""
    deadline = time.monotonic() + timeout
    c = client(lab.inv, node, timeout=2.0)
    try:
        while time.monotonic() < deadline:
            if lab.pid(node.name) is None:
                raise LabError(f"{node.name} exited during its full sync ({lab.log(node.name)})")
            try:
                info = c.info("replication") | c.info("persistence")
                if (
                    info.get("master_link_status") == "up"
                    and not int(info.get("master_sync_in_progress", 0))
                    and not int(info.get("loading", 0))
                ):
                    return time.monotonic()
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.01)
    finally:
        c.close()
    raise LabError(f"{node.name} did not finish its full sync within {timeout:.0f} s")


def floor(lab: Lab, primary: Endpoint, node: Endpoint) -> float:
    """Redis alone: start the killed node empty as a replica, time to link up."""
    lab.stop(node.name, kill=True)
    wait_port_free(node)
    t0 = time.monotonic()
    lab.start_node(node, replicaof=primary)
    return wait_linked(lab, node) - t0


def rebuild(lab: Lab, node: Endpoint, journal_dir: Path) -> dict[str, Any]:
    """The tool: `redis-ha replica.rebuild --yes` on the killed node, as an operator runs it."""
    lab.stop(node.name, kill=True)
    wait_port_free(node)  # the dying process's teardown is not the tool's time
    before = set(journal_dir.glob("*.jsonl")) if journal_dir.exists() else set()
    env = {**os.environ, "REDIS_HA_JOURNAL_DIR": str(journal_dir), "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "redis_ha", "replica.rebuild", "--node", node.name, "--yes"]
    argv += ["--inventory", str(lab.inv.path)]
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    total = time.monotonic() - t0
    if r.returncode != 0:
        tail = (r.stdout + r.stderr).strip().splitlines()[-5:]
        raise LabError(f"replica.rebuild failed (exit {r.returncode}): {' | '.join(tail)}")
    new = sorted(set(journal_dir.glob("*.jsonl")) - before)
    steps: dict[str, float] = {}
    if new:
        for line in new[-1].read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") == "step-end" and rec.get("result") == "ok":
                steps[rec["step"]] = float(rec.get("elapsed_s") or 0)
    return {
        "total_s": round(total, 3),
        "to_in_sync_s": steps.get("full-sync"),  # runner clock, from its start
        "step_elapsed_s": steps,
    }


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median per size of the floor, the rebuild to in-sync, the whole procedure, the overhead."""
    out = []
    for gb in sorted({r["size_gb"] for r in rows}):
        rs = [r for r in rows if r["size_gb"] == gb]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            vals = [r[key] for r in rs if r[key] is not None]
            return round(statistics.median(vals), 3) if vals else None

        out.append(
            {
                "size_gb": gb,
                "floor_s": med("floor_s"),
                "rebuild_to_in_sync_s": med("rebuild_to_in_sync_s"),
                "rebuild_total_s": med("rebuild_total_s"),
                "overhead_to_in_sync_s": med("overhead_to_in_sync_s"),
                "all_within_target": all(r["to_in_sync_within_target"] for r in rs),
            }
        )
    return out


def run_bench(
    sizes: list[float],
    *,
    runs: int = 1,
    out_dir: Path | None = Path("bench/results"),
    log: Log = print,
) -> dict[str, Any]:
    """Run on a fresh lab of its own; returns (and writes) the result object."""
    state = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    inv = inventory.load(
        write_lab_inventory(state, down_after_ms=3000, failover_timeout_ms=10000, single=False)
    )
    lab = Lab(inv)
    started = datetime.now(UTC)
    info = machine()
    rows: list[dict[str, Any]] = []
    version = None
    try:
        lab.up(timeout=60)
        version = factsmod.gather(inv, detail=False).nodes[0].version
        primary = lab.current_primary()
        target = next(n for n in inv.nodes if n != primary)
        log(f"bench lab up; rebuilding {target.name} from {primary.name}; sizes {sizes} GB")
        next_key = 0
        for gb in sizes:
            t0 = time.monotonic()
            next_key = fill(inv, primary, int(gb * 1024**3), next_key)
            lab.wait_ready(timeout=300)
            f = factsmod.node_facts(inv, primary)
            log(
                f"{gb:g} GB: {f.keys} keys, used_memory {(f.used_memory or 0) / 1024**2:.0f} MB "
                f"(loaded in {time.monotonic() - t0:.1f} s)"
            )
            # The first full sync after a bulk load is up to 2x slower than the next ones
            # (measured: 8.3 s then 4.0 s for 1 GB): one unmeasured warm-up sync per size.
            floor(lab, primary, target)
            lab.wait_ready(timeout=120)
            for run in range(1, runs + 1):
                fl = floor(lab, primary, target)
                lab.wait_ready(timeout=120)
                rb = rebuild(lab, target, state / "journal")
                lab.wait_ready(timeout=120)
                budget = fl * 1.10 + 2.0
                row = {
                    "size_gb": gb,
                    "run": run,
                    "keys": f.keys,
                    "used_memory": f.used_memory,
                    "floor_s": round(fl, 3),
                    "rebuild_total_s": rb["total_s"],
                    "rebuild_to_in_sync_s": rb["to_in_sync_s"],
                    "overhead_total_s": round(rb["total_s"] - fl, 3),
                    "overhead_to_in_sync_s": (
                        round(rb["to_in_sync_s"] - fl, 3) if rb["to_in_sync_s"] else None
                    ),
                    "target_s": round(budget, 3),
                    "to_in_sync_within_target": bool(
                        rb["to_in_sync_s"] and rb["to_in_sync_s"] <= budget
                    ),
                    "total_within_target": rb["total_s"] <= budget,
                    "step_elapsed_s": rb["step_elapsed_s"],
                }
                rows.append(row)
                log(
                    f"  run {run}: floor {fl:.2f} s, rebuild to in-sync "
                    f"{rb['to_in_sync_s']} s, whole procedure {rb['total_s']:.2f} s"
                )
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)
    result = {
        "bench": "rebuild",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "machine": {**info, "redis": version},
        "settings": {
            "repl_diskless_sync": inv.settings.repl_diskless_sync,
            "repl_diskless_sync_delay": inv.settings.repl_diskless_sync_delay,
            "value_bytes": VALUE_BYTES,
            "target": "rebuild <= floor * 1.10 + 2 s",
        },
        "runs": runs,
        "rows": rows,
        "summary": summarize(rows),
    }
    return save(result, started, out_dir)
