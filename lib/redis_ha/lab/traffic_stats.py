"""What the app simulator measured, and how it is counted: latency, write stalls, lost writes.

The simulator's workers (lab/traffic.py) record every request in a `Tally`: when it ended, how
long it took, and flags (write, ok, hit, miss, stale). Everything in the report is computed from
those records by the pure functions here, so the accounting is tested from data.

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
import json
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from redis.exceptions import BusyLoadingError, MasterDownError, ReadOnlyError, ResponseError
from redis.sentinel import MasterNotFoundError

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


def version(raw: bytes | str, run_id: str) -> int:
    """The version in a session value; 0 when it is not ours (another run, garbage)."""
    try:
        d = json.loads(raw)
        return int(d["v"]) if d.get("run") == run_id else 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return 0


class Tally:
    """One worker's records (one thread writes them: no locks): requests and acknowledged writes."""

    def __init__(self) -> None:
        self.t_end = array("d")  # seconds since the run's start
        self.lat = array("d")  # ms
        self.flags = array("B")
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self.last_acked: dict[int, int] = {}
        self.acked: list[tuple[int, int]] = []  # (key index, version) under the current config
        self.acked_total = 0
        self.skipped = 0

    def record(self, t_end: float, lat_ms: float, flags: int) -> None:
        self.t_end.append(t_end)
        self.lat.append(lat_ms)
        self.flags.append(flags)

    def fail(self, e: BaseException, t_end: float, lat_ms: float, flags: int) -> None:
        kind = error_kind(e)
        self.errors[kind] += 1
        self.samples.setdefault(kind, (str(e).splitlines() or [type(e).__name__])[0][:200])
        self.record(t_end, lat_ms, flags)

    def ack(self, k: int, v: int) -> None:
        if v > self.last_acked.get(k, 0):
            self.last_acked[k] = v
            self.acked.append((k, v))
            self.acked_total += 1

    def reset_acked(self) -> None:
        """The app was pointed elsewhere: earlier acknowledgements are not expected there."""
        self.last_acked.clear()
        self.acked.clear()


def newest_versions(acked: Iterable[tuple[int, int]]) -> dict[int, int]:
    """The newest acknowledged version of each key."""
    newest: dict[int, int] = {}
    for k, v in acked:
        newest[k] = max(v, newest.get(k, 0))
    return newest


def lost_writes(acked: list[tuple[int, int]], found: dict[int, int]) -> tuple[int, int]:
    """(missing_writes, missing_keys): acknowledged versions newer than the version read back,
    and keys whose newest acknowledged version is gone."""
    missing_w = sum(1 for k, v in acked if v > found.get(k, 0))
    missing_k = sum(1 for k, v in newest_versions(acked).items() if v > found.get(k, 0))
    return missing_w, missing_k


def summarise(
    tallies: list[Tally], end: float, first_failover: float | None, last_failover: float | None
) -> dict[str, Any]:
    """The Report's fields the records give, for a run of `end` seconds (failover times split
    the hit rate)."""
    t_end: list[float] = []
    lat: list[float] = []
    flags: list[int] = []
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for w in tallies:
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
    return dict(
        ops=ops,
        ops_per_s=round(ops / end, 1) if end > 0 else 0.0,
        skipped=sum(w.skipped for w in tallies),
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
            "overall": hit_rate(t_end, flags, None, None),
            "before_failover": hit_rate(t_end, flags, None, first_failover),
            "after_failover": None
            if last_failover is None
            else hit_rate(t_end, flags, last_failover, None),
        },
        acked_writes=sum(w.acked_total for w in tallies),
        stale_reads=sum(1 for f in flags if f & F_STALE),
        timeline=timeline(t_end, lat, flags),
    )


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def hit_rate(
    t_end: list[float], flags: list[int], after: float | None, before: float | None
) -> float | None:
    """Cache hits among successful reads that ended in [after, before)."""
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


def timeline(t_end: list[float], lat: list[float], flags: list[int]) -> list[dict[str, Any]]:
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
