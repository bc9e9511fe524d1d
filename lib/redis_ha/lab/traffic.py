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

The report's fields, and how each is counted: lab/traffic_stats.py.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from redis_ha import client as hac
from redis_ha.conn import tls_kwargs
from redis_ha.errors import HAError, LabError
from redis_ha.inventory import LOOPBACK, Inventory
from redis_ha.lab.cluster import require_lab
from redis_ha.lab.traffic_stats import (
    F_HIT,
    F_MISS,
    F_OK,
    F_STALE,
    F_WRITE,
    Report,
    Tally,
    error_kind,
    lost_writes,
    newest_versions,
    summarise,
    version,
)

CLIENTS = ("naive", "recommended")
MAX_BACKLOG_S = 1.0  # a worker further behind its schedule skips ahead instead of bursting
SAMPLE_S = 0.02
STABLE_S = 0.5  # the primary must stay the same this long before the end-of-run check
ENV_POLL_S = 0.5


class _Worker(Tally):
    """One thread's state: its keys, its SQLite, its records (no locks needed)."""

    def __init__(self, wid: int, n_workers: int, n_keys: int) -> None:
        super().__init__()
        self.wid = wid
        self.keys = list(range(wid, n_keys, n_workers))
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, v INTEGER, ts REAL)")
        self.gen = 0  # the config generation its acknowledgements belong to
        self.thread: threading.Thread | None = None


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
            tls=tuple((k, v) for k, v in tls_kwargs(self.inv).items() if k != "ssl"),
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
                w.gen = self.gen
                w.reset_acked()
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
        w.fail(e, t - self.t0, (t - t_start) * 1000, flags)

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
        w.record(t - self.t0, (t - t_start) * 1000, F_WRITE | F_OK)

    def _read(self, w: _Worker, k: int) -> None:
        r = self.client
        t_start = time.perf_counter()
        flags = 0
        try:
            raw = r.get(self.key(k))
            if raw is not None:
                flags |= F_HIT
                if version(raw, self.run_id) < w.last_acked.get(k, 0):
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
        w.record(t - self.t0, (t - t_start) * 1000, flags | F_OK)

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
                sentinel_kwargs={
                    "password": cfg.password,
                    "socket_timeout": 0.5,
                    **cfg.ssl_kwargs(),
                },
            )
            try:
                host, port = s.discover_master(cfg.master or "")
            finally:
                s.close()
        else:
            server = cfg.server_kwargs()
            host, port = server["host"], server["port"]
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
        """A plain client to `addr` with the app's database and credentials."""
        host, _, port = addr.rpartition(":")
        server = self.cfg.server_kwargs()
        return redis.Redis(
            host=host,
            port=int(port),
            db=server["db"],
            username=server["username"],
            password=server["password"],
            socket_timeout=2,
            socket_connect_timeout=1,
            **self.cfg.ssl_kwargs(),
        )

    def _check(self) -> tuple[dict[str, Any], int | None, int | None, int]:
        acked = [(k, v) for w in self.workers for (k, v) in w.acked]
        newest = newest_versions(acked)
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
                    found[k] = version(raw, self.run_id) if raw is not None else 0
        except redis.RedisError as e:
            check["error"] = f"reading keys back from {addr}: {error_kind(e)}"
            return check, None, None, len(acked)
        finally:
            c.close()
        missing_w, missing_k = lost_writes(acked, found)
        check["ok"] = True
        return check, missing_w, missing_k, len(acked)

    # --- the report -------------------------------------------------------------------------
    def _report(
        self, check: dict[str, Any], missing_w: int | None, missing_k: int | None, checked: int
    ) -> Report:
        end = self.t_stop if self.t_stop is not None else self.elapsed()
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
            failovers=failovers,
            primary_start=_named(self.inv, self.primary_start),
            primary_end=_named(self.inv, hac.primary_address(self.client)),
            config_changes=self.config_changes,
            checked_writes=checked,
            missing_writes=missing_w,
            missing_keys=missing_k,
            check=check,
            **summarise(list(self.workers), end, first_fo, last_fo),
        )


def _named(inv: Inventory, addr: str | None) -> str | None:
    """'127.0.0.1:7001 (redis-2)' when the address is a node of the inventory."""
    if not addr:
        return None
    name = inv.name_of(addr)
    return f"{addr} ({name})" if name and name != addr else addr
