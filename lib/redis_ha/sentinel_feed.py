"""Sentinel events as they happen: a pub/sub subscriber on every Sentinel.

Every Sentinel publishes its events (`+sdown`, `+odown`, `+switch-master`, `+tilt`,
`-failover-abort-*` ...) on channels named after them, with the same text it logs. One thread
per Sentinel subscribes to all of them (`PSUBSCRIBE *`, minus the `__sentinel__:hello`
gossip) and turns each into a `sentinel_events.Event`, stamped with the tool's clock when it
arrived, so `sentinel_events.last_failover` reads a live feed the same way it reads logs.

A Sentinel that dies, restarts or freezes (a PING every 2 s notices) is retried every 0.5 s;
the others keep feeding, so the feed survives a failover and the loss of any Sentinel.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque

import redis

from redis_ha.conn import client, describe_error
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.sentinel_events import Event

HELLO = "__sentinel__:hello"
RETRY_S = 0.5
HEALTH_CHECK_S = 2


class SentinelFeed:
    """Subscribes to every Sentinel; `drain()` returns the events that arrived since last time."""

    def __init__(self, inv: Inventory, *, history: int = 500) -> None:
        self.inv = inv
        self._q: queue.Queue[Event] = queue.Queue()
        self.history: deque[Event] = deque(maxlen=history)
        self.errors: dict[str, str | None] = {s.name: "not connected yet" for s in inv.sentinels}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> SentinelFeed:
        for s in self.inv.sentinels:
            t = threading.Thread(target=self._listen, args=(s,), name=f"feed-{s.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3)

    def __enter__(self) -> SentinelFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connected(self) -> dict[str, bool]:
        with self._lock:
            return {name: err is None for name, err in self.errors.items()}

    def wait_connected(self, timeout: float = 3.0) -> bool:
        """True once every Sentinel's subscription is live (events before that are not seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.connected().values()):
                return True
            time.sleep(0.02)
        return False

    def drain(self) -> list[Event]:
        out: list[Event] = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                break
        out.sort(key=lambda e: e.ts)
        self.history.extend(out)
        return out

    def _set_error(self, name: str, err: str | None) -> None:
        with self._lock:
            self.errors[name] = err

    def _listen(self, s: Endpoint) -> None:
        while not self._stop.is_set():
            c: redis.Redis | None = None
            ps = None
            try:
                c = client(self.inv, s, timeout=1.0, health_check_interval=HEALTH_CHECK_S)
                ps = c.pubsub(ignore_subscribe_messages=True)
                ps.psubscribe("*")
                ps.get_message(timeout=0.5)  # the subscribe confirmation: now it is live
                self._set_error(s.name, None)
                while not self._stop.is_set():
                    m = ps.get_message(timeout=0.2)
                    if not m or m.get("type") != "pmessage" or m["channel"] == HELLO:
                        continue
                    self._q.put(Event(time.time(), s.name, str(m["channel"]), str(m["data"])))
            except (redis.RedisError, OSError, ValueError) as e:
                self._set_error(s.name, describe_error(e))
                self._stop.wait(RETRY_S)
            finally:
                for closable in (ps, c):
                    if closable is not None:
                        with contextlib.suppress(redis.RedisError, OSError):
                            closable.close()
