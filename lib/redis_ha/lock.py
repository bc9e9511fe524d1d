"""The cluster lock: two operators never run changing procedures against one cluster at once.

Two layers, both taken by `ClusterLock.acquire()`:

1. A key on the current primary, `redis-ha-runbooks:lock:<master>`, set with SET NX PX (30 s)
   and refreshed every 10 s by a daemon thread that checks the value is still ours (Lua). The
   key replicates, so it survives a failover and every operator's tool sees it, wherever it
   runs. If the tool dies, nothing refreshes it and it expires within the TTL.
2. A local lock file (`<journal dir>/.lock-<inventory>`, O_EXCL, holder's pid inside), taken
   always. It is what still protects when the key cannot be written: with min-replicas-to-write
   the primary refuses every write (the lock's too) once its replicas are gone, and a dead
   primary refuses everything. In that case the runner says so: the file only excludes
   operators on the same machine. A file whose holder process is gone is stale and taken over.

Keys under `redis-ha-runbooks:` are the tool's own; procedures comparing data ignore them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from redis_ha import journal as journalmod
from redis_ha.conn import client, describe_error
from redis_ha.errors import HAError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.safestart import named_primary

KEY_PREFIX = "redis-ha-runbooks:lock:"
TTL_MS = 30_000

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_TAKEOVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockHeld(HAError):
    """Someone else runs a changing procedure against this cluster."""

    code = 4


def commands(inv: Inventory) -> list[list[str]]:
    """What taking, refreshing and releasing the lock sends to the primary (the ACL precheck
    asks about these too: a user who cannot take the lock cannot run a procedure)."""
    key = KEY_PREFIX + inv.master_name
    return [["SET", key, "v", "NX", "PX", "1000"], ["GET", key], ["EVAL", _RELEASE, "1", key, "v"]]


def describe_holder(h: dict[str, Any], where: str) -> str:
    since = h.get("since")
    ago = f" ({int(time.time() - since)} s ago)" if isinstance(since, (int, float)) else ""
    when = journalmod.utc(since) if isinstance(since, (int, float)) else "?"
    return (
        f"{h.get('who', '?')}@{h.get('host', '?')} (pid {h.get('pid', '?')}) is running "
        f"{h.get('procedure', '?')} since {when}{ago} [lock {where}]"
    )


def _primary(inv: Inventory) -> Endpoint | None:
    """The primary a majority of Sentinels name, asked directly (a lock must not need INFO)."""
    addr = named_primary(inv)
    if addr is None:
        return None
    host, _, port = addr.rpartition(":")
    return inv.node_by_address(host, port)


@dataclass
class ClusterLock:
    """Lock of one cluster for one run. Use as a context manager or acquire()/release()."""

    inv: Inventory
    procedure: str
    run_id: str = ""
    ttl_ms: int = TTL_MS
    lock_dir: Path | None = None
    mode: str = "none"  # "cluster+file" | "file" once acquired
    warning: str | None = None
    value: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _file: Path | None = None

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.inv.master_name

    def holder_info(self) -> dict[str, Any]:
        return {
            **journalmod.whoami(),
            "procedure": self.procedure,
            "run": self.run_id,
            "since": time.time(),
            "inventory": self.inv.name,
        }

    # --- local file ---------------------------------------------------------------------------
    def _file_path(self) -> Path:
        d = self.lock_dir or journalmod.journal_dir()
        return d / f".lock-{self.inv.name}-{self.inv.master_name}"

    def _take_file(self) -> None:
        p = self._file_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read_json(p)
                if holder and not _holder_dead(holder):
                    raise LockHeld(
                        f"cluster {self.inv.name} is locked: {describe_holder(holder, str(p))}"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()  # stale: its holder is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(self.value)
            self._file = p
            return
        raise LockHeld(f"cannot take the lock file {p} (contended); try again")

    # --- key on the primary -------------------------------------------------------------------
    def _take_key(self) -> str | None:
        """Set the key; None when done, else why it could not be written (fallback)."""
        ep = _primary(self.inv)
        if ep is None:
            return "no Sentinel majority names a primary"
        c = client(self.inv, ep, timeout=1.0)
        try:
            if c.set(self.key, self.value, nx=True, px=self.ttl_ms):
                return None
            raw = c.get(self.key)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError) as e:
            return f"{ep.name} refused the lock key: {describe_error(e)}"
        finally:
            c.close()
        holder = _loads(raw) or {"who": "?", "procedure": "?"}
        if self.run_id and holder.get("run") == self.run_id and _holder_dead(holder):
            # Resuming a run whose process died: its own lock is ours to take over.
            c = client(self.inv, ep, timeout=1.0)
            try:
                if c.eval(_TAKEOVER, 1, self.key, str(raw), self.value, self.ttl_ms):
                    return None
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError) as e:
                return f"{ep.name} refused the lock key: {describe_error(e)}"
            finally:
                c.close()
        raise LockHeld(
            f"cluster {self.inv.name} is locked: {describe_holder(holder, f'key on {ep.name}')}; "
            f"it expires {self.ttl_ms // 1000} s after its holder stops refreshing it"
        )

    def _refresh_loop(self) -> None:
        interval = max(self.ttl_ms / 3000, 0.2)
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed refresh is retried; TTL is 3x
                self._script(_REFRESH, self.ttl_ms)

    def _script(self, script: str, *extra: Any) -> Any:
        ep = _primary(self.inv)
        if ep is None:
            return None
        c = client(self.inv, ep, timeout=1.0)
        try:
            return c.eval(script, 1, self.key, self.value, *extra)
        finally:
            c.close()

    # --- public -------------------------------------------------------------------------------
    def acquire(self) -> ClusterLock:
        """Take both layers, or raise LockHeld naming the holder. Sets `warning` on fallback."""
        self.value = json.dumps(self.holder_info(), sort_keys=True)
        self._take_file()
        try:
            why = self._take_key()
        except BaseException:
            self._release_file()
            raise
        if why is None:
            self.mode = "cluster+file"
            self._stop.clear()
            self._thread = threading.Thread(target=self._refresh_loop, daemon=True)
            self._thread.start()
        else:
            self.mode = "file"
            self.warning = (
                f"could not lock the cluster ({why}); using the local lock file "
                f"{self._file_path()} instead, which only excludes operators on this machine"
            )
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.mode == "cluster+file":
            self._release_key()
        self._release_file()
        self.mode = "none"

    def _release_key(self) -> None:
        """Delete our key wherever it is (the script deletes only our own value), not only on
        the primary the Sentinels name at this moment (none, or another, while they settle):
        in a CI drill the key of a finished split-brain recovery locked the next run out
        (released nowhere, by all signs). A replica refuses the DEL: its copy goes with the
        primary's."""
        for ep in self.inv.nodes:
            with contextlib.suppress(Exception):
                c = client(self.inv, ep, timeout=1.0)
                try:
                    c.eval(_RELEASE, 1, self.key, self.value)
                finally:
                    c.close()

    def _release_file(self) -> None:
        if self._file is not None:
            holder = _read_json(self._file)
            if holder is None or holder.get("pid") == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    self._file.unlink()
            self._file = None

    def __enter__(self) -> ClusterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _loads(raw: Any) -> dict[str, Any] | None:
    try:
        v = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def _read_json(p: Path) -> dict[str, Any] | None:
    try:
        return _loads(p.read_text())
    except OSError:
        return None


def _holder_dead(h: dict[str, Any]) -> bool:
    """A file lock of this host whose process is gone is stale; other hosts' we cannot judge."""
    if h.get("host") != socket.gethostname():
        return False
    pid = h.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
