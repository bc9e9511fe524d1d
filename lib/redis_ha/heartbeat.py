"""Replication lag in milliseconds, from a heartbeat the primary stamps with its own clock.

INFO's `lag` counts whole seconds since a replica's last REPLCONF ACK, so it reads 0 or 1000 ms
and a 100 ms target cannot be checked with it. A heartbeat can:

- **The key.** `redis-ha-runbooks:heartbeat:<master>` on the primary, a string
  `"<microseconds since the epoch on the primary's clock> <the primary's run_id>"` with a 1 h TTL.
  A Lua script takes `TIME` and writes the key in one step, so the stamp is the primary's own
  clock at the moment of the write, and the value (not the script) is what replicates. The
  `redis-ha-runbooks:` prefix is the tool's own (the lock lives there too): no app key collides.
- **A measurement** writes one beat (the script returns its stamp `w`; the tool notes the moment
  on its own monotonic clock) and then reads the key on each replica, back to back for 5 ms and
  then every millisecond, until the replica shows `w` or the budget runs out. A replica's
  `lag_ms` is the age of the newest beat it holds, on the primary's clock, at the moment it
  answered: `(w - stamp) / 1000 + (t_read - t_write) * 1000`, the second term being an interval
  of the tool's monotonic clock (midpoints of the two requests). No two clocks are compared, so
  no clock sync is needed; the figure has microsecond units and is accurate to about one round
  trip plus the 1 ms poll. A replica that keeps up reads a fraction of a millisecond on loopback;
  one cut off reads how long ago it last heard from the primary.
- **Writes refused or paused.** Under `CLIENT PAUSE ... WRITE` the script blocks: the write has a
  200 ms timeout, after which the connection is dropped (Redis then discards the blocked
  command; measured: the key was unchanged after the pause), and the round says "writes paused".
  `NOREPLICAS` says "writes refused". In both cases no beat was written this round, so the lag
  falls back to replication offsets for that round instead of reporting a stale beat's age.
- **Never an empty primary.** The script refuses to write when the primary holds no key at all: a
  primary that restarted empty must keep looking empty (`triage`, `safestart` rely on it).
- **Read-only credentials**: `enabled=False` (`--no-heartbeat`) writes nothing; lag then comes
  from offsets (bytes behind; INFO's whole-second lag) and every figure says so.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from redis_ha.conn import client, describe_error
from redis_ha.facts import ClusterFacts, NodeFacts
from redis_ha.health import Health
from redis_ha.inventory import Endpoint, Inventory

KEY_PREFIX = "redis-ha-runbooks:heartbeat:"
TTL_MS = 3_600_000
WRITE_TIMEOUT = 0.2  # a paused primary blocks the write: give up after this long
READ_TIMEOUT = 0.5
BUDGET_S = 0.5  # how long to wait for a replica to show this round's beat
SPIN_S = 0.005  # poll back to back this long, then every POLL_S
POLL_S = 0.001

# KEYS[1] the key, ARGV[1] the primary's run_id, ARGV[2] the TTL in ms.
_WRITE = """
if redis.call('DBSIZE') == 0 then return false end
local t = redis.call('TIME')
local v = t[1] .. string.format('%06d', tonumber(t[2])) .. ' ' .. ARGV[1]
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v
"""

OK, OFF, PAUSED, REFUSED, DENIED, EMPTY, NO_PRIMARY, FAILED = (
    "ok",
    "off",
    "paused",
    "refused",
    "denied",
    "empty",
    "no-primary",
    "failed",
)
HEARTBEAT, OFFSETS = "heartbeat", "offsets"
# Why a round has no beat, in the words every replica's figure then carries.
WHY = {
    OFF: "heartbeat off",
    PAUSED: "writes paused",
    REFUSED: "writes refused",
    DENIED: "heartbeat denied",
    EMPTY: "primary empty",
    FAILED: "heartbeat failed",
}


def key(inv: Inventory) -> str:
    return KEY_PREFIX + inv.master_name


def parse(value: Any) -> tuple[int, str] | None:
    """`"<us> <run_id>"` -> (us, run_id); None for a missing or foreign value."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    us, _, run_id = text.partition(" ")
    return (int(us), run_id) if us.isdigit() else None


def age_ms(stamp_us: int, written_us: int, t_write: float, t_read: float) -> float:
    """Age of a beat stamped `stamp_us`, read at `t_read`, given the beat `written_us` at `t_write`.

    The stamps are the primary's clock; `t_write`/`t_read` the tool's monotonic clock, so only
    their difference counts. Never negative (the midpoints can cross by a few microseconds).
    """
    return max(0.0, (written_us - stamp_us) / 1000 + (t_read - t_write) * 1000)


@dataclass
class ReplicaLag:
    """One replica's lag this round, and where the figure came from."""

    node: str
    lag_ms: float | None
    source: str  # HEARTBEAT | OFFSETS
    caught_up: bool = False  # it showed this round's beat within the budget
    lag_bytes: int | None = None
    note: str | None = None


@dataclass
class Beat:
    """One heartbeat round: what was written, and each replica's lag."""

    state: str
    note: str
    primary: str | None = None
    stamp_us: int | None = None
    write_ms: float | None = None
    replicas: dict[str, ReplicaLag] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Written:
    state: str
    note: str
    stamp: tuple[int, str] | None = None  # (us, run_id) of the beat written
    t_write: float = 0.0  # the tool's monotonic clock, midpoint of the write
    write_ms: float | None = None


def offsets_lag(n: NodeFacts, why: str) -> ReplicaLag:
    """The fallback figure: 0 when the replica holds every byte, else INFO's whole seconds."""
    if n.lag_bytes == 0 and n.link_up:
        lag: float | None = 0.0
    else:
        lag = float(n.lag_ms) if n.lag_ms is not None else None
    behind = "?" if n.lag_bytes is None else str(n.lag_bytes)
    return ReplicaLag(
        node=n.name,
        lag_ms=lag,
        source=OFFSETS,
        lag_bytes=n.lag_bytes,
        note=f"{why}: lag from offsets ({behind} bytes behind; INFO lag in whole seconds)",
    )


def replicas_of(facts: ClusterFacts, primary: str) -> list[NodeFacts]:
    """Reachable nodes replicating from `primary`."""
    return [
        n for n in facts.nodes if n.up and n.role == "replica" and n.replicating_from == primary
    ]


class Heartbeat:
    """Writes beats on the Sentinels' primary and reads them back on its replicas.

    Keeps one connection per node between rounds, so a read starts within microseconds of the
    write (a new connection would add its own setup to the measured age).
    """

    def __init__(self, inv: Inventory, *, enabled: bool = True, budget_s: float = BUDGET_S):
        self.inv = inv
        self.enabled = enabled
        self.budget_s = budget_s
        self.key = key(inv)
        self._clients: dict[str, redis.Redis] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(inv.nodes)))

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, ep: Endpoint, timeout: float) -> redis.Redis:
        name = f"{ep.name}@{timeout}"
        c = self._clients.get(name)
        if c is None:
            c = self._clients[name] = client(self.inv, ep, timeout=timeout)
        return c

    def _drop(self, ep: Endpoint, timeout: float) -> None:
        c = self._clients.pop(f"{ep.name}@{timeout}", None)
        if c is not None:
            c.close()

    def measure(self, facts: ClusterFacts, health: Health) -> Beat:
        """One round: write a beat on the usable primary, read it on each of its replicas."""
        primary = health.primary
        if primary is None:
            return Beat(NO_PRIMARY, "no usable primary: no heartbeat written")
        reps = replicas_of(facts, primary)
        if not self.enabled:
            beat = Beat(OFF, f"{WHY[OFF]}: lag from replication offsets", primary=primary)
            beat.replicas = {n.name: offsets_lag(n, WHY[OFF]) for n in reps}
            return beat
        for n in reps:  # connect before the write: a read must follow it at once
            try:
                self._client(self.inv.node(n.name), READ_TIMEOUT).ping()
            except (redis.RedisError, OSError):
                self._drop(self.inv.node(n.name), READ_TIMEOUT)
        w = self._write(facts.node(primary))
        beat = Beat(w.state, w.note, primary=primary, write_ms=w.write_ms)
        if w.stamp is None:
            beat.replicas = {n.name: offsets_lag(n, WHY[w.state]) for n in reps}
            return beat
        stamp, run_id = w.stamp
        beat.stamp_us = stamp
        futures = {n.name: self._pool.submit(self._read, n, stamp, run_id, w.t_write) for n in reps}
        beat.replicas = {name: f.result() for name, f in futures.items()}
        return beat

    def _write(self, p: NodeFacts) -> _Written:
        """Write one beat on the primary `p`; a pause, a refusal or an error is said, not raised."""
        ep = self.inv.node(p.name)
        c = self._client(ep, WRITE_TIMEOUT)
        try:
            c.ping()  # connect and authenticate first: only the write itself is timed
            t0 = time.perf_counter()
            v = c.eval(_WRITE, 1, self.key, p.run_id or "?", TTL_MS)
            t1 = time.perf_counter()
        except redis.TimeoutError:
            self._drop(ep, WRITE_TIMEOUT)  # Redis discards the blocked command with the link
            return _Written(
                PAUSED,
                f"{WHY[PAUSED]}: {p.name} did not take the heartbeat in "
                f"{WRITE_TIMEOUT * 1000:.0f} ms while it answers reads (CLIENT PAUSE, or hung)",
            )
        except redis.ResponseError as e:
            text = str(e).splitlines()[0]
            if text.startswith("NOREPLICAS"):
                return _Written(REFUSED, f"{WHY[REFUSED]}: {p.name} says {text.split('.')[0]}")
            if text.startswith("NOPERM"):
                return _Written(
                    DENIED, f"{WHY[DENIED]} (read-only user? use --no-heartbeat): {text}"
                )
            return _Written(FAILED, f"{WHY[FAILED]}: {text}")
        except (redis.RedisError, OSError) as e:
            self._drop(ep, WRITE_TIMEOUT)
            return _Written(FAILED, f"{WHY[FAILED]}: {describe_error(e)}")
        parsed = parse(v)
        if parsed is None:
            return _Written(EMPTY, f"{WHY[EMPTY]}: {p.name} holds no key, no heartbeat written")
        return _Written(
            OK,
            f"heartbeat written on {p.name}",
            stamp=parsed,
            t_write=(t0 + t1) / 2,
            write_ms=(t1 - t0) * 1000,
        )

    def _read(self, n: NodeFacts, stamp: int, run_id: str, t_write: float) -> ReplicaLag:
        """Poll one replica until it shows the beat `stamp` (or the budget ends)."""
        ep = self.inv.node(n.name)
        c = self._client(ep, READ_TIMEOUT)
        seen: tuple[int, str] | None = None
        t_read = t_write
        while True:
            ts = time.perf_counter()
            try:
                raw = c.get(self.key)
            except (redis.RedisError, OSError) as e:
                self._drop(ep, READ_TIMEOUT)
                return ReplicaLag(
                    n.name,
                    None,
                    HEARTBEAT,
                    lag_bytes=n.lag_bytes,
                    note=f"heartbeat unreadable: {describe_error(e)}",
                )
            tr = time.perf_counter()
            seen, t_read = parse(raw), (ts + tr) / 2
            if seen and seen[1] == run_id and seen[0] >= stamp:
                break
            waited = tr - t_write
            if waited > self.budget_s:
                break
            if waited > SPIN_S:
                time.sleep(POLL_S)
        if seen is None:
            return ReplicaLag(
                n.name,
                None,
                HEARTBEAT,
                lag_bytes=n.lag_bytes,
                note="no heartbeat on this replica yet",
            )
        if seen[1] != run_id:
            return ReplicaLag(
                n.name,
                None,
                HEARTBEAT,
                lag_bytes=n.lag_bytes,
                note="its newest heartbeat is from another primary (a failover)",
            )
        lag = age_ms(seen[0], stamp, t_write, t_read)
        caught = seen[0] >= stamp
        return ReplicaLag(
            n.name,
            round(lag, 3),
            HEARTBEAT,
            caught_up=caught,
            lag_bytes=n.lag_bytes,
            note=None if caught else f"did not show this beat within {self.budget_s:.2f} s",
        )
