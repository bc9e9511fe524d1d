"""The Node app client under test: examples/ioredis/traffic.mjs (ioredis with the recommended
settings of examples/ioredis/options.mjs) run as a child process, beside the redis-py clients
of lab/traffic.py, and judged the same way: the same longest-stall and lost-write rules
(lab/traffic_stats.py), every key read back from the primary the Sentinel majority names.

Needs `node` and `npm install` in the example folder (scripts/setup does both when node is
there); `available()` says why not otherwise, so callers skip loudly.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis_ha import view as viewmod
from redis_ha.conn import client
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import require_lab
from redis_ha.lab.traffic_stats import longest_stall, lost_writes, newest_versions, version

ENV_DIR = "REDIS_HA_IOREDIS_DIR"  # where traffic.mjs and its node_modules are
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "examples" / "ioredis"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0


def project_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def available() -> str | None:
    """Why the Node client cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm; scripts/setup does it)"
    d = project_dir()
    if not (d / "traffic.mjs").exists():
        return f"{d}/traffic.mjs is missing (set ${ENV_DIR} to the examples/ioredis folder)"
    if not (d / "node_modules" / "ioredis").is_dir():
        return f"ioredis is not installed in {d} (run: npm install --prefix {d})"
    return None


@dataclass
class NodeReport:
    """What the Node client saw, in the fields the benchmark compares across clients."""

    client: str
    ioredis: str
    duration_s: float
    ops: int
    ops_per_s: float
    failed: int
    skipped: int
    errors: dict[str, int]
    write_stall_s: float
    acked_writes: int
    missing_writes: int | None
    missing_keys: int | None
    hit_rate: dict[str, float | None] = field(default_factory=dict)  # writes only: no reads

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class NodeTraffic:
    """`NodeTraffic(inv, rate=1000).start()` ... `.stop() -> NodeReport`, like lab.Traffic."""

    def __init__(
        self, inv: Inventory, *, rate: float = 1000, keys: int = 2000, prefix: str = "ioredis:"
    ):
        require_lab(inv)
        why = available()
        if why:
            raise LabError(why)
        self.inv, self.rate, self.keys, self.prefix = inv, rate, keys, prefix
        self.run_id = secrets.token_hex(4)
        self.tmp = Path(tempfile.mkdtemp(prefix="node-traffic-"))
        self.out = self.tmp / "report.json"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> NodeTraffic:
        sentinels = [{"host": s.host, "port": s.port} for s in self.inv.sentinels]
        env = {
            **os.environ,
            "IOREDIS_SENTINELS": json.dumps(sentinels),
            "IOREDIS_MASTER": self.inv.master_name,
            "RATE": str(self.rate),
            "KEYS": str(self.keys),
            "PREFIX": self.prefix,
            "RUN_ID": self.run_id,
            "OUT": str(self.out),
        }
        pw = self.inv.password()
        if pw:
            env["REDIS_PASSWORD"] = pw  # environment, never the command line
        d = project_dir()
        self.proc = subprocess.Popen(
            ["node", str(d / "traffic.mjs")],
            cwd=d,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=(self.tmp / "stderr.log").open("w"),
            text=True,
        )
        assert self.proc.stdout is not None
        t0 = time.monotonic()
        line = self.proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() - t0 > READY_TIMEOUT_S:
            self.proc.kill()
            raise LabError(f"the Node client did not start: {self._stderr()}")
        return self

    def _stderr(self) -> str:
        try:
            return (self.tmp / "stderr.log").read_text().strip()[-300:]
        except OSError:
            return ""

    def stop(self) -> NodeReport:
        """Stop writing, wait for the requests in flight, check every key on the primary."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise LabError("the Node client did not stop within 30 s") from None
        try:
            raw = json.loads(self.out.read_text())
        except (OSError, ValueError) as e:
            raise LabError(f"the Node client wrote no report ({e}): {self._stderr()}") from None
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        acked = [(int(k), int(v)) for k, v in raw["acked"]]
        missing_w, missing_k = self._check(acked)
        stall, _ = longest_stall(raw["ok_times"], raw["fail_starts"], raw["duration_s"])
        ops = int(raw["issued"])
        return NodeReport(
            client="ioredis",
            ioredis=raw.get("version", "?"),
            duration_s=round(raw["duration_s"], 3),
            ops=ops,
            ops_per_s=round(ops / raw["duration_s"], 1) if raw["duration_s"] else 0.0,
            failed=int(raw["failed"]) + int(raw.get("in_flight_left", 0)),
            skipped=int(raw["skipped"]),
            errors=dict(Counter(raw["errors"])),
            write_stall_s=round(stall, 4),
            acked_writes=len(acked),
            missing_writes=missing_w,
            missing_keys=missing_k,
        )

    def _check(self, acked: list[tuple[int, int]]) -> tuple[int | None, int | None]:
        """Lost writes, read back from the primary the Sentinel majority names now."""
        inv = self.inv
        primary = viewmod.take(inv).health.primary
        if primary is None:
            return None, None
        newest = newest_versions(acked)
        found: dict[int, int] = {}
        c = client(inv, inv.node(primary), timeout=5.0)
        try:
            ks = sorted(newest)
            for i in range(0, len(ks), 1000):
                chunk = ks[i : i + 1000]
                vals = c.mget([f"{self.prefix}{k}" for k in chunk])
                for k, v in zip(chunk, vals, strict=True):
                    found[k] = version(v, self.run_id) if v is not None else 0
        finally:
            c.close()
        return lost_writes(acked, found)
