"""Fail points: hold a step right after one of its changes, so a rehearsal (or a test) can land
a fault exactly there: SIGKILL, Ctrl-C, a lost connection, a node dying, a Sentinel hanging.

`REDIS_HA_FAILPOINT=<step-id>:<n>` holds the run after the n-th change that step makes (a
command that changes a node or a Sentinel, a file written, a process started, the app's restart
run). The run then writes `REDIS_HA_FAILPOINT_FILE` (the change it just made, one line) and
waits until that file is removed (at most HOLD_MAX_S), in a cancellable wait: Ctrl-C there
stops the step like any other wait. Lab inventories only: the runner refuses it elsewhere
(`refuse_unless_lab`). Unset, every call here is one dictionary lookup.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from redis_ha import cancel
from redis_ha.errors import InventoryError

ENV = "REDIS_HA_FAILPOINT"
ENV_FILE = "REDIS_HA_FAILPOINT_FILE"
HOLD_MAX_S = 120.0

# Commands that change nothing: everything else a step sends counts as a change.
_READS = frozenset(
    {
        "AUTH", "HELLO", "PING", "ECHO", "SELECT", "INFO", "ROLE", "DBSIZE", "SCAN", "GET",
        "MGET", "EXISTS", "TYPE", "TTL", "PTTL", "DUMP", "STRLEN", "HGETALL", "KEYS", "TIME",
        "LASTSAVE", "COMMAND", "MEMORY", "OBJECT", "PUBLISH", "WAIT", "SUBSCRIBE", "PSUBSCRIBE",
        "READONLY", "RANDOMKEY",
    }
)  # fmt: skip
_READ_SUBCOMMANDS = frozenset(
    {
        "CONFIG GET", "CLIENT LIST", "CLIENT INFO", "CLIENT GETNAME", "CLIENT SETNAME",
        "CLIENT ID", "ACL WHOAMI", "ACL DRYRUN", "ACL LIST", "ACL GETUSER", "ACL CAT",
        "SENTINEL MASTER", "SENTINEL MASTERS", "SENTINEL REPLICAS", "SENTINEL SLAVES",
        "SENTINEL SENTINELS", "SENTINEL GET-MASTER-ADDR-BY-NAME", "SENTINEL CKQUORUM",
        "SENTINEL INFO-CACHE", "SENTINEL MYID", "SENTINEL PENDING-SCRIPTS",
        "SENTINEL IS-MASTER-DOWN-BY-ADDR",
    }
)  # fmt: skip

_lock = threading.Lock()
_step: str | None = None
_count = 0


def armed() -> tuple[str, int] | None:
    """(step id, n) when REDIS_HA_FAILPOINT is set, None otherwise; InventoryError when bad."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    step, _, n = raw.rpartition(":")
    if not step or not n.isdigit() or int(n) < 1:
        raise InventoryError(f"${ENV} must be <step-id>:<n> with n >= 1, got {raw!r}")
    return step, int(n)


def refuse_unless_lab(lab: bool) -> None:
    """A fail point holds a real procedure half-way: only ever on a lab."""
    if armed() and not lab:
        raise InventoryError(f"${ENV} is set: fail points run on a lab inventory only")


def enter(step: str | None) -> None:
    """The runner starts `step` (None: between steps): changes count from here."""
    global _step, _count
    with _lock:
        _step, _count = step, 0


def is_change(args: tuple[Any, ...]) -> bool:
    """Whether a command (its words) changes a node or a Sentinel. redis-py sends some as one
    word with a space ("CONFIG GET"): the words are split first."""
    words = [w.upper() for a in args[:2] for w in str(a).split()][:2]
    if not words or words[0] in _READS:
        return False
    return " ".join(words) not in _READ_SUBCOMMANDS


def command(args: tuple[Any, ...]) -> None:
    """A command was answered: a change holds the run if it is the armed one."""
    if os.environ.get(ENV) and is_change(args):
        changed(" ".join(str(a) for a in args[:3]))


def changed(what: str) -> None:
    """The current step just made a change (`what`, a few words): hold if it is the armed one.

    Only a step's own worker thread counts (redis_ha.bounded runs each apply in one): the
    lock's refresh thread writes every 10 s whatever step runs, and must never be held."""
    point = armed()
    if point is None or not cancel.in_step():
        return
    global _count
    with _lock:
        if _step != point[0]:
            return
        _count += 1
        hit = _count == point[1]
    if hit:
        _hold(what)


def _hold(what: str) -> None:
    marker = os.environ.get(ENV_FILE)
    if not marker:
        raise InventoryError(f"${ENV} needs ${ENV_FILE}: the file that says the run is held")
    path = Path(marker)
    path.write_text(f"{what}\n", encoding="utf-8")
    deadline = time.monotonic() + HOLD_MAX_S
    while path.exists() and time.monotonic() < deadline:
        cancel.sleep(0.02)
