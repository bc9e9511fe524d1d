"""The app simulator: a stand-in for the web backend's session cache, to rehearse under load.

`Traffic(inv, rate=1000, client="recommended").start()` ... `.stop() -> Report` runs it in-process;
`invoke lab.traffic` runs it from the shell (also in the background next to a procedure).

What it does, and why each part is there:

* Worker threads issue GET/SET on `session:<n>` keys at a fixed total rate (absolute schedule per
  worker, so the rate does not drift when an operation is slow). Each worker owns the keys with
  `n % workers == worker`, so per key the operations are strictly ordered and every anomaly is a
  real one, not a race between workers.
* Cache-aside against a source of truth (SQLite in memory, one per worker): a write bumps the
  session's version in SQLite, then SETs the cache; a read GETs the cache and, on a miss, reads
  SQLite and fills the cache. All keys are loaded (warmed) before the clock starts, so the hit
  rate is ~100% until the cluster loses data (a node restarted empty, a rollback to an empty
  instance) and then shows how cold the cache went.
* Every acknowledged SET (writes and fills) is recorded as key -> version. Reads compare what they
  get with the last acknowledged version (`stale_reads`: an acknowledged write vanished while the
  run went on), and at the end, after the cluster settles, every key is read back from the
  primary the Sentinel majority names (`missing_writes`: acknowledged versions newer than what is
  there; `missing_keys`: keys whose newest acknowledged version is gone).
* A monitor samples the client's discovered primary address every 20 ms; a change is a failover
  (`failovers`), and splits the hit rate into before/after.

Session values are JSON strings: ``{"v": 7, "ts": 1764161234.123456, "run": "9f2c1a",
"user": 42, "data": "..."}``. ``v`` is the version (per key, increasing), ``ts`` the wall-clock
time of the write in Unix seconds (what a "newest wins" salvage compares), ``run`` the id of the
simulator run that wrote it. Keys carry no TTL.

Report (JSON, one object; `Report.to_dict()`):

``client`` naive|recommended, ``mode`` sentinel|url, ``config`` (where the app connected, no
password), ``rate_target``, ``workers``, ``keys``, ``write_ratio``, ``run_id``, ``started_at``
(ISO), ``duration_s``; ``ops`` (finished requests), ``ops_per_s``, ``skipped`` (scheduled
requests never sent because their worker was blocked for over a second, e.g. in the client's
retries: load a real app would have queued or shed), ``ok``, ``failed`` (requests that returned
an error to the app after the client's own retries), ``reads``, ``writes``, ``writes_ok``;
``errors`` {kind: count} with kinds like NOREPLICAS, READONLY, LOADING, MASTERDOWN,
timeout, connection-refused, connection-lost, no-primary; ``error_samples`` {kind: first message};
``write_stall_s`` (longest time between two successful writes, or from a failed write to the next
success, or to the end of the run if none came) and ``write_stall_at_s`` (when it began);
``latency_ms`` {p50, p99, max} (service time of each request, retries included);
``hit_rate`` {overall, before_failover, after_failover} (null when undefined);
``failovers`` [{at_s, from, to}] (addresses, with node names when known);
``primary_start``, ``primary_end``; ``config_changes`` [{at_s, config}] (env-file mode);
``acked_writes``, ``checked_writes`` (acknowledged under the final config), ``missing_writes``,
``missing_keys``, ``stale_reads``; ``check`` {ok, primary, settle_s, error};
``timeline`` [{t, ops, failed, writes_ok, hits, misses, p99_ms}] per second.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import random
import secrets
import sqlite3
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import redis
from redis.exceptions import (
    BusyLoadingError,
    MasterDownError,
    ReadOnlyError,
    ResponseError,
)
from redis.sentinel import MasterNotFoundError

from redis_ha import client as hac
from redis_ha.errors import HAError, LabError
from redis_ha.inventory import LOOPBACK, Inventory
from redis_ha.lab.cluster import require_lab

CLIENTS = ("naive", "recommended")
MAX_BACKLOG_S = 1.0  # a worker further behind its schedule skips ahead instead of bursting
SAMPLE_S = 0.02
STABLE_S = 0.5  # the primary must stay the same this long before the end-of-run check
ENV_POLL_S = 0.5

F_WRITE, F_OK, F_HIT, F_MISS, F_STALE = 1, 2, 4, 8, 16


def error_kind(e: BaseException) -> str:
    """A short, stable name for an error an app would see (the keys of `errors`)."""
    code = getattr(e, "code", None)
    if isinstance(code, str) and code:
        return code
    text = str(e)
    first = text.split(" ", 1)[0]
    if first.isupper() and first.isalpha() and len(first) > 2:
        return first
    if isinstance(e, ReadOnlyError) or "previous master is now a slave" in text:
        return "READONLY"
    if isinstance(e, BusyLoadingError):
        return "LOADING"
    if isinstance(e, MasterDownError):
        return "MASTERDOWN"
    if isinstance(e, MasterNotFoundError):
        return "no-primary"
    if isinstance(e, redis.TimeoutError):
        return "timeout"
    if isinstance(e, redis.ConnectionError):
        low = text.lower()
        if "refused" in low:
            return "connection-refused"
        if any(w in low for w in ("reset", "broken pipe", "closed", "lost")):
            return "connection-lost"
        return "connection"
    if isinstance(e, ResponseError):
        return "response-error"
    return type(e).__name__


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def longest_stall(
    ok_times: list[float], fail_starts: list[float], end: float
) -> tuple[float, float | None]:
    """Longest gap without a successful write: between two successes, or from a failed write
    (when no success came in between) to the next success or to `end`. Returns (gap, start)."""
    ok = sorted(ok_times)
    best, at = 0.0, None
    for a, b in zip(ok, ok[1:], strict=False):
        if b - a > best:
            best, at = b - a, a
    fails = sorted(fail_starts)
    if fails:
        # A failure before the first success, or after the last one, bounds a gap too.
        if not ok or fails[0] < ok[0]:
            nxt = ok[0] if ok else end
            if nxt - fails[0] > best:
                best, at = nxt - fails[0], fails[0]
        if ok and fails[-1] > ok[-1]:
            first_after = fails[bisect.bisect_right(fails, ok[-1])]
            if end - first_after > best:
                best, at = end - first_after, first_after
    return best, at


@dataclass
class Report:
    """What the run saw; see the module docstring for each field."""

    client: str
    mode: str
    config: str
    rate_target: float
    workers: int
    keys: int
    write_ratio: float
    run_id: str
    started_at: str
    duration_s: float
    ops: int
    ops_per_s: float
    skipped: int
    ok: int
    failed: int
    reads: int
    writes: int
    writes_ok: int
    errors: dict[str, int]
    error_samples: dict[str, str]
    write_stall_s: float
    write_stall_at_s: float | None
    latency_ms: dict[str, float | None]
    hit_rate: dict[str, float | None]
    failovers: list[dict[str, Any]]
    primary_start: str | None
    primary_end: str | None
    config_changes: list[dict[str, Any]]
    acked_writes: int
    checked_writes: int
    missing_writes: int | None
    missing_keys: int | None
    stale_reads: int
    check: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Worker:
    """One thread's state: its keys, its SQLite, its measurements (no locks needed)."""

    def __init__(self, wid: int, n_workers: int, n_keys: int) -> None:
        self.wid = wid
        self.keys = list(range(wid, n_keys, n_workers))
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, v INTEGER, ts REAL)")
        self.t_end = array("d")
        self.lat = array("d")
        self.flags = array("B")
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self.last_acked: dict[int, int] = {}
        self.acked: list[tuple[int, int]] = []  # (key index, version) under the current config
        self.acked_total = 0
        self.skipped = 0
        self.gen = 0
        self.thread: threading.Thread | None = None

    def ack(self, k: int, v: int) -> None:
        if v > self.last_acked.get(k, 0):
            self.last_acked[k] = v
            self.acked.append((k, v))
            self.acked_total += 1

    def reset_acked(self, gen: int) -> None:
        """The app was pointed elsewhere: earlier acknowledgements are not expected there."""
        self.gen = gen
        self.last_acked.clear()
        self.acked.clear()


class Traffic:
    """Simulated app traffic against the cluster of `inv` (or the config in `env_file`)."""

    def __init__(
        self,
        inv: Inventory,
        *,
        rate: float = 1000,
        client: str = "recommended",
        workers: int = 4,
        keys: int = 10_000,
        write_ratio: float = 0.5,
        env_file: str | Path | None = None,
        prefix: str = "session:",
        settle_s: float = 30.0,
        value_bytes: int = 100,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        require_lab(inv)
        if client not in CLIENTS:
            raise HAError(f"unknown client {client!r} (choose: {', '.join(CLIENTS)})")
        if not 0 < rate <= 20_000:
            raise HAError(f"--rate must be between 1 and 20000 ops/s, got {rate}")
        if not 1 <= workers <= 64:
            raise HAError(f"--workers must be between 1 and 64, got {workers}")
        if keys < workers:
            raise HAError(f"--keys must be at least the number of workers ({workers})")
        if not 0 <= write_ratio <= 1:
            raise HAError(f"--write-ratio must be between 0 and 1, got {write_ratio}")
        self.inv = inv
        self.rate = float(rate)
        self.style = client
        self.n_workers = workers
        self.n_keys = keys
        self.write_ratio = write_ratio
        self.env_file = Path(env_file) if env_file else None
        self.prefix = prefix
        self.settle_s = settle_s
        self.payload = "x" * value_bytes
        self.progress = progress
        self.run_id = secrets.token_hex(3)
        self.cfg = self._initial_config()
        self.client = self._build(self.cfg)
        self.old_clients: list[redis.Redis] = []
        self.gen = 0
        self.workers = [_Worker(i, workers, keys) for i in range(workers)]
        self.stop_event = threading.Event()
        self.monitor: threading.Thread | None = None
        self.addr_changes: list[tuple[float, str | None, str]] = []
        self.config_changes: list[dict[str, Any]] = []
        self.primary_start: str | None = None
        self._last_addr: str | None = None
        self.t0 = 0.0
        self.t_stop: float | None = None
        self.started_at = ""
        self.report: Report | None = None

    # --- configuration ----------------------------------------------------------------------
    def _initial_config(self) -> hac.AppConfig:
        if self.env_file:
            self._env_mtime = self._mtime()
            return self._read_env()
        return hac.AppConfig(
            sentinels=tuple((s.host, s.port) for s in self.inv.sentinels),
            master=self.inv.master_name,
            password=self.inv.password(),
        )

    def _mtime(self) -> float | None:
        assert self.env_file is not None
        try:
            return self.env_file.stat().st_mtime_ns
        except OSError:
            return None

    def _read_env(self) -> hac.AppConfig:
        assert self.env_file is not None
        cfg = hac.config_from_env(hac.read_env_file(self.env_file))
        bad = [h for h in cfg.hosts() if h not in LOOPBACK]
        if bad:
            raise LabError(
                f"{self.env_file}: the simulator only talks to loopback addresses, not {bad[0]}"
            )
        return cfg

    def _build(self, cfg: hac.AppConfig) -> redis.Redis:
        return hac.from_config(cfg, style=self.style)

    # --- running ----------------------------------------------------------------------------
    def key(self, k: int) -> str:
        return f"{self.prefix}{k}"

    def value(self, k: int, v: int, ts: float) -> str:
        return json.dumps(
            {"v": v, "ts": ts, "run": self.run_id, "user": k, "data": self.payload},
            separators=(",", ":"),
        )

    def warm(self) -> None:
        """Load every session into SQLite and the cache before the clock starts."""
        now = time.time()
        try:
            for w in self.workers:
                w.db.executemany(
                    "INSERT OR REPLACE INTO sessions VALUES (?, 1, ?)", [(k, now) for k in w.keys]
                )
                for i in range(0, len(w.keys), 1000):
                    chunk = w.keys[i : i + 1000]
                    p = self.client.pipeline(transaction=False)
                    for k in chunk:
                        p.set(self.key(k), self.value(k, 1, now))
                    p.execute()
                    for k in chunk:
                        w.ack(k, 1)
        except redis.RedisError as e:
            raise LabError(
                f"cannot write to the primary before starting ({self.cfg.describe()}): "
                f"{error_kind(e)}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from None

    def start(self) -> Traffic:
        """Warm the cache, then start the workers and the monitor; returns at once."""
        self.warm()
        self.primary_start = self._last_addr = hac.primary_address(self.client)
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.t0 = time.perf_counter()
        for w in self.workers:
            w.thread = threading.Thread(
                target=self._work, args=(w,), name=f"traffic-{w.wid}", daemon=True
            )
            w.thread.start()
        self.monitor = threading.Thread(target=self._monitor, name="traffic-monitor", daemon=True)
        self.monitor.start()
        return self

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def _work(self, w: _Worker) -> None:
        rng = random.Random(w.wid * 7919 + int(self.t0 * 1000))
        period = self.n_workers / self.rate
        due = self.t0 + w.wid / self.rate
        stop = self.stop_event
        while not stop.is_set():
            now = time.perf_counter()
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            if now - due > MAX_BACKLOG_S:
                w.skipped += int((now - due) / period)
                due = now
            due += period
            if w.gen != self.gen:
                w.reset_acked(self.gen)
            k = w.keys[rng.randrange(len(w.keys))]
            try:
                if rng.random() < self.write_ratio:
                    self._write(w, k)
                else:
                    self._read(w, k)
            except Exception as e:  # noqa: BLE001 - a surprise must show in the report, not kill
                self._fail(w, e, 0, time.perf_counter())

    def _fail(self, w: _Worker, e: Exception, flags: int, t_start: float) -> None:
        t = time.perf_counter()
        kind = error_kind(e)
        w.errors[kind] += 1
        w.samples.setdefault(kind, (str(e).splitlines() or [type(e).__name__])[0][:200])
        w.t_end.append(t - self.t0)
        w.lat.append((t - t_start) * 1000)
        w.flags.append(flags)

    def _write(self, w: _Worker, k: int) -> None:
        ts = time.time()
        row = w.db.execute(
            "UPDATE sessions SET v = v + 1, ts = ? WHERE id = ? RETURNING v", (ts, k)
        ).fetchone()
        v = int(row[0])
        r = self.client
        t_start = time.perf_counter()
        try:
            r.set(self.key(k), self.value(k, v, ts))
        except redis.RedisError as e:
            self._fail(w, e, F_WRITE, t_start)
            return
        t = time.perf_counter()
        w.ack(k, v)
        w.t_end.append(t - self.t0)
        w.lat.append((t - t_start) * 1000)
        w.flags.append(F_WRITE | F_OK)

    def _read(self, w: _Worker, k: int) -> None:
        r = self.client
        t_start = time.perf_counter()
        flags = 0
        try:
            raw = r.get(self.key(k))
            if raw is not None:
                flags |= F_HIT
                if _version(raw, self.run_id) < w.last_acked.get(k, 0):
                    flags |= F_STALE
            else:
                flags |= F_MISS
                if k in w.last_acked:
                    flags |= F_STALE
                v, ts = w.db.execute("SELECT v, ts FROM sessions WHERE id = ?", (k,)).fetchone()
                r.set(self.key(k), self.value(k, v, ts))
                w.ack(k, v)
        except redis.RedisError as e:
            self._fail(w, e, flags, t_start)
            return
        t = time.perf_counter()
        w.t_end.append(t - self.t0)
        w.lat.append((t - t_start) * 1000)
        w.flags.append(flags | F_OK)

    def _monitor(self) -> None:
        """Watch the discovered primary (failover detection), the env file, and report progress."""
        next_env = next_progress = time.perf_counter()
        while not self.stop_event.wait(SAMPLE_S):
            now = time.perf_counter()
            if self.env_file and now >= next_env:
                next_env = now + ENV_POLL_S
                self._poll_env()
            self._note_address(self.elapsed(), hac.primary_address(self.client))
            if self.progress and now >= next_progress:
                next_progress = now + 1.0
                self.progress(self.snapshot())

    def _note_address(self, t: float, addr: str | None) -> None:
        if addr and addr != self._last_addr:
            self.addr_changes.append((t, self._last_addr, addr))
            self._last_addr = addr

    def _poll_env(self) -> None:
        m = self._mtime()
        if m is None or m == self._env_mtime:
            return
        try:
            cfg = self._read_env()
        except HAError as e:
            # Half-written or broken: keep the old client and look again at the next change.
            self.config_changes.append({"at_s": round(self.elapsed(), 3), "error": str(e)})
            self._env_mtime = m
            return
        self._env_mtime = m
        if cfg == self.cfg:
            return
        new = self._build(cfg)
        self.old_clients.append(self.client)
        t = self.elapsed()
        self.cfg, self.client = cfg, new
        self.gen += 1
        self.config_changes.append({"at_s": round(t, 3), "config": cfg.describe()})
        if cfg.mode == "url":  # a URL client knows its address before it connects
            self._note_address(t, hac.primary_address(new))

    def snapshot(self) -> dict[str, Any]:
        """Counters so far (racy reads of the workers' arrays; fine for a progress line)."""
        ops = sum(len(w.flags) for w in self.workers)
        failed = sum(sum(w.errors.values()) for w in self.workers)
        t = self.elapsed()
        return {
            "t": round(t, 1),
            "ops": ops,
            "ops_per_s": round(ops / t, 1) if t > 0 else 0.0,
            "failed": failed,
            "primary": self.inv.name_of(hac.primary_address(self.client)),
        }

    def wait(self, duration: float | None = None) -> None:
        """Block until `duration` seconds of traffic have run, or `stop_event` is set."""
        while not self.stop_event.is_set():
            left = None if duration is None else duration - self.elapsed()
            if left is not None and left <= 0:
                return
            self.stop_event.wait(0.2 if left is None else min(left, 0.2))

    def stop(self) -> Report:
        """Stop the workers, let the cluster settle, check acknowledged writes; the report."""
        if self.report is not None:
            return self.report
        self.t_stop = self.elapsed()
        self.stop_event.set()
        deadline = time.monotonic() + hac.RETRY_BUDGET_S + 5
        for w in self.workers:
            if w.thread is not None:
                w.thread.join(max(0.1, deadline - time.monotonic()))
        if self.monitor is not None:
            self.monitor.join(2)
        try:
            check, missing_w, missing_k, checked = self._check()
            self.report = self._report(check, missing_w, missing_k, checked)
        finally:
            for c in (*self.old_clients, self.client):
                with contextlib.suppress(Exception):  # a broken client must not hide the report
                    hac.close(c)
            for w in self.workers:
                w.db.close()
        return self.report

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, duration: float) -> Report:
        """start(), wait `duration` seconds (or until stop_event), stop()."""
        self.start()
        try:
            self.wait(duration)
        finally:
            report = self.stop()
        return report

    # --- the end-of-run check ---------------------------------------------------------------
    def _settled_primary(self) -> tuple[str, float]:
        """The address the app's config leads to once it has stayed the same for STABLE_S."""
        t0 = time.monotonic()
        deadline = t0 + self.settle_s
        last, since, err = None, t0, "no answer"
        cfg = self.cfg
        while time.monotonic() < deadline:
            try:
                addr = self._resolve(cfg)
                if addr != last:
                    last, since = addr, time.monotonic()
                elif time.monotonic() - since >= STABLE_S:
                    return addr, time.monotonic() - t0
            except (redis.RedisError, OSError) as e:
                err = f"{error_kind(e)}: {str(e).splitlines()[0] if str(e) else ''}"
                last = None
            time.sleep(0.2)
        raise LabError(f"the cluster did not settle within {self.settle_s:.0f} s ({err})")

    def _resolve(self, cfg: hac.AppConfig) -> str:
        """Where a fresh app would write now: majority-named primary that says it is primary."""
        if cfg.mode == "sentinel":
            s = hac.MajoritySentinel(
                list(cfg.sentinels),
                sentinel_kwargs={"password": cfg.password, "socket_timeout": 0.5},
            )
            try:
                host, port = s.discover_master(cfg.master or "")
            finally:
                s.close()
        else:
            u = urlparse(cfg.url or "")
            host, port = u.hostname or "", u.port or 6379
        c = self._direct(f"{host}:{port}")
        try:
            role = c.execute_command("ROLE")
        finally:
            c.close()
        name = role[0].decode() if isinstance(role[0], bytes) else role[0]
        if name != "master":
            raise redis.ConnectionError(f"{host}:{port} is a {name}, not primary")
        return f"{host}:{port}"

    def _direct(self, addr: str) -> redis.Redis:
        host, _, port = addr.rpartition(":")
        db, password = 0, self.cfg.password
        if self.cfg.mode == "url":
            u = urlparse(self.cfg.url or "")
            path = u.path.strip("/")
            db = int(path) if path.isdigit() else 0
            if u.password:  # a password in REDIS_URL wins, as in the app's client
                password = unquote(u.password)
        return redis.Redis(
            host=host,
            port=int(port),
            db=db,
            password=password,
            socket_timeout=2,
            socket_connect_timeout=1,
        )

    def _check(self) -> tuple[dict[str, Any], int | None, int | None, int]:
        acked = [(k, v) for w in self.workers for (k, v) in w.acked]
        newest: dict[int, int] = {}
        for k, v in acked:
            newest[k] = max(v, newest.get(k, 0))
        check: dict[str, Any] = {"ok": False, "primary": None, "settle_s": None, "error": None}
        try:
            addr, settle = self._settled_primary()
        except HAError as e:
            check["error"] = str(e)
            return check, None, None, len(acked)
        check.update(primary=self.inv.name_of(addr), settle_s=round(settle, 2))
        found: dict[int, int] = {}
        c = self._direct(addr)
        try:
            ks = sorted(newest)
            for i in range(0, len(ks), 1000):
                chunk = ks[i : i + 1000]
                for k, raw in zip(chunk, c.mget([self.key(k) for k in chunk]), strict=True):
                    found[k] = _version(raw, self.run_id) if raw is not None else 0
        except redis.RedisError as e:
            check["error"] = f"reading keys back from {addr}: {error_kind(e)}"
            return check, None, None, len(acked)
        finally:
            c.close()
        missing_w = sum(1 for k, v in acked if v > found.get(k, 0))
        missing_k = sum(1 for k, v in newest.items() if v > found.get(k, 0))
        check["ok"] = True
        return check, missing_w, missing_k, len(acked)

    # --- the report -------------------------------------------------------------------------
    def _report(
        self, check: dict[str, Any], missing_w: int | None, missing_k: int | None, checked: int
    ) -> Report:
        end = self.t_stop if self.t_stop is not None else self.elapsed()
        t_end: list[float] = []
        lat: list[float] = []
        flags: list[int] = []
        errors: Counter[str] = Counter()
        samples: dict[str, str] = {}
        for w in self.workers:
            t_end += w.t_end.tolist()
            lat += w.lat.tolist()
            flags += w.flags.tolist()
            errors.update(w.errors)
            for kk, s in w.samples.items():
                samples.setdefault(kk, s)
        ops = len(flags)
        ok = sum(1 for f in flags if f & F_OK)
        writes = sum(1 for f in flags if f & F_WRITE)
        write_ok_t = [t for t, f in zip(t_end, flags, strict=True) if f & F_WRITE and f & F_OK]
        write_fail_start = [
            t - la / 1000
            for t, la, f in zip(t_end, lat, flags, strict=True)
            if f & F_WRITE and not f & F_OK
        ]
        stall, stall_at = longest_stall(write_ok_t, write_fail_start, max(end, *t_end[-1:]))
        ls = sorted(lat)
        failovers = [
            {
                "at_s": round(t, 3),
                "from": _named(self.inv, a),
                "to": _named(self.inv, b),
            }
            for t, a, b in self.addr_changes
        ]
        first_fo = self.addr_changes[0][0] if self.addr_changes else None
        last_fo = self.addr_changes[-1][0] if self.addr_changes else None
        return Report(
            client=self.style,
            mode=self.cfg.mode,
            config=self.cfg.describe(),
            rate_target=self.rate,
            workers=self.n_workers,
            keys=self.n_keys,
            write_ratio=self.write_ratio,
            run_id=self.run_id,
            started_at=self.started_at,
            duration_s=round(end, 3),
            ops=ops,
            ops_per_s=round(ops / end, 1) if end > 0 else 0.0,
            skipped=sum(w.skipped for w in self.workers),
            ok=ok,
            failed=ops - ok,
            reads=ops - writes,
            writes=writes,
            writes_ok=len(write_ok_t),
            errors=dict(errors.most_common()),
            error_samples=samples,
            write_stall_s=round(stall, 4),
            write_stall_at_s=None if stall_at is None else round(stall_at, 3),
            latency_ms={
                "p50": _r(percentile(ls, 0.5)),
                "p99": _r(percentile(ls, 0.99)),
                "max": _r(ls[-1] if ls else None),
            },
            hit_rate={
                "overall": _hit_rate(t_end, flags, None, None),
                "before_failover": _hit_rate(t_end, flags, None, first_fo),
                "after_failover": None
                if last_fo is None
                else _hit_rate(t_end, flags, last_fo, None),
            },
            failovers=failovers,
            primary_start=_named(self.inv, self.primary_start),
            primary_end=_named(self.inv, hac.primary_address(self.client)),
            config_changes=self.config_changes,
            acked_writes=sum(w.acked_total for w in self.workers),
            checked_writes=checked,
            missing_writes=missing_w,
            missing_keys=missing_k,
            stale_reads=sum(1 for f in flags if f & F_STALE),
            check=check,
            timeline=_timeline(t_end, lat, flags),
        )


def _version(raw: bytes | str, run_id: str) -> int:
    """The version in a session value; 0 when it is not ours (another run, garbage)."""
    try:
        d = json.loads(raw)
        return int(d["v"]) if d.get("run") == run_id else 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return 0


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _named(inv: Inventory, addr: str | None) -> str | None:
    """'127.0.0.1:7001 (redis-2)' when the address is a node of the inventory."""
    if not addr:
        return None
    name = inv.name_of(addr)
    return f"{addr} ({name})" if name and name != addr else addr


def _hit_rate(
    t_end: list[float], flags: list[int], after: float | None, before: float | None
) -> float | None:
    hits = misses = 0
    for t, f in zip(t_end, flags, strict=True):
        if (after is not None and t < after) or (before is not None and t >= before):
            continue
        if f & F_OK:
            if f & F_HIT:
                hits += 1
            elif f & F_MISS:
                misses += 1
    return round(hits / (hits + misses), 4) if hits + misses else None


def _timeline(t_end: list[float], lat: list[float], flags: list[int]) -> list[dict[str, Any]]:
    """Per-second buckets, so a stall or a cold cache can be located in time."""
    if not t_end:
        return []
    n = int(max(t_end)) + 1
    buckets: list[dict[str, Any]] = [
        {"t": i, "ops": 0, "failed": 0, "writes_ok": 0, "hits": 0, "misses": 0, "_lat": []}
        for i in range(n)
    ]
    for t, la, f in zip(t_end, lat, flags, strict=True):
        b = buckets[max(0, int(t))]
        b["ops"] += 1
        b["_lat"].append(la)
        if not f & F_OK:
            b["failed"] += 1
            continue
        if f & F_WRITE:
            b["writes_ok"] += 1
        if f & F_HIT:
            b["hits"] += 1
        if f & F_MISS:
            b["misses"] += 1
    for b in buckets:
        b["p99_ms"] = _r(percentile(sorted(b.pop("_lat")), 0.99))
    return buckets
