"""`invoke bench.cli`: how long `status --json` and `health` take as whole processes, beside
the redis-cli calls they replace, side by side in one run on a lab of its own.

Every command starts a fresh process, as cron, a monitor or an operator does; rounds are
interleaved (one of each per round) so a busy moment of a shared machine hits all of them
alike. The baseline is the six redis-cli calls a person would type: INFO replication on each
node, SENTINEL GET-MASTER-ADDR-BY-NAME on each Sentinel (the password via REDISCLI_AUTH, never
on the command line).
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha.bench import machine, save
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

Log = Callable[[str], None]
CHECKOUT = Path(__file__).resolve().parents[3]  # the repository root, when run from one
TIMEOUT_S = 30.0


def commands(inv: Inventory) -> dict[str, list[list[str]]]:
    """Each measured command as the argv lists one sample runs in turn."""
    exe = Path(sys.executable).parent / "redis-ha"
    tool = [str(exe)] if exe.exists() else [sys.executable, "-m", "redis_ha"]
    cli = shutil.which("redis-cli")
    if cli is None:
        raise LabError("redis-cli is not installed (apt-get install redis-tools)")
    base = [
        [cli, "-h", ep.host, "-p", str(ep.port), *cmd]
        for ep, cmd in [
            *((n, ["INFO", "replication"]) for n in inv.nodes),
            *((s, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", inv.master_name]) for s in inv.sentinels),
        ]
    ]
    i = ["--inventory", str(inv.path)]
    out = {
        "redis-cli x6 (baseline)": base,
        "redis-ha status --json": [[*tool, "status", "--json", *i]],
        "redis-ha health": [[*tool, "health", *i]],
    }
    if (CHECKOUT / "tasks.py").exists():
        inv_bin = Path(sys.executable).parent / "invoke"
        invoke = [str(inv_bin)] if inv_bin.exists() else [sys.executable, "-m", "invoke"]
        out["invoke status --json (checkout)"] = [[*invoke, "status", "--json", *i]]
        out["invoke health (checkout)"] = [[*invoke, "health", *i]]
    return out


def time_one(argvs: list[list[str]], env: dict[str, str]) -> float:
    """Seconds for the argv lists run one after another; a failure is a benchmark error."""
    t0 = time.perf_counter()
    for argv in argvs:
        p = subprocess.run(
            argv,
            cwd=CHECKOUT if (CHECKOUT / "tasks.py").exists() else None,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
        )
        if p.returncode:
            tail = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
            raise LabError(f"{' '.join(argv[:3])} ... exited {p.returncode}: {tail[0]}")
    return time.perf_counter() - t0


def run_bench(
    *, runs: int = 15, out_dir: Path | None = Path("bench/results"), log: Log = print
) -> dict[str, Any]:
    """Time each command `runs` times, interleaved, on a fresh lab; returns (and writes) it."""
    state = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    inv = inventory.load(write_lab_inventory(state, single=False))
    lab = Lab(inv)
    started = datetime.now(UTC)
    info = machine()
    times: dict[str, list[float]] = {}
    try:
        lab.up(timeout=60)
        version = factsmod.gather(inv, detail=False).nodes[0].version
        env = {**os.environ, "NO_COLOR": "1"}
        pw = inv.password()
        if pw:
            env["REDISCLI_AUTH"] = pw
        cmds = commands(inv)
        times = {k: [] for k in cmds}
        for argvs in cmds.values():  # one unmeasured round: the page cache, .pyc files
            time_one(argvs, env)
        for i in range(1, runs + 1):
            for k, argvs in cmds.items():
                times[k].append(round(time_one(argvs, env), 4))
            log(f"round {i}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)
    rows = [
        {
            "command": k,
            "runs": len(v),
            "median_s": round(statistics.median(v), 4),
            "min_s": min(v),
            "max_s": max(v),
        }
        for k, v in times.items()
        if v
    ]
    result = {
        "bench": "cli",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "machine": {**info, "redis": version},
        "runs": runs,
        "rows": rows,
        "samples": times,
    }
    return save(result, started, out_dir)
