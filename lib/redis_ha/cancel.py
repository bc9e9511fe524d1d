"""Stopping a step's worker thread at its next safe wait.

Each step's apply runs in a worker thread (redis_ha.bounded), and Ctrl-C only reaches the main
thread. Without this the worker went on, unjournaled, until the process exited: a rollback's
redeploy put the old config back behind the journal's back. A wait that may be abandoned calls
`sleep` here: once the run is interrupted (or the step timed out) it raises Cancelled, so the
step's own `finally` (unpause, close) runs and the step ends before the run journals. A wait
that must not be abandoned (the switch after SENTINEL FAILOVER: unpausing then would let the
old primary take writes that are lost) uses time.sleep and is waited for.
"""

from __future__ import annotations

import threading
import time

_events: dict[int, threading.Event] = {}


class Cancelled(KeyboardInterrupt):
    """Raised in a step's worker at its next cancellable wait once the run stopped waiting."""


def register(event: threading.Event) -> None:
    """The calling (worker) thread stops at its next `sleep` once `event` is set."""
    _events[threading.get_ident()] = event


def unregister() -> None:
    _events.pop(threading.get_ident(), None)


def in_step() -> bool:
    """Whether the calling thread is a step's worker (redis_ha.bounded.call)."""
    return threading.get_ident() in _events


def requested() -> bool:
    """Whether the calling thread has been asked to stop."""
    ev = _events.get(threading.get_ident())
    return ev is not None and ev.is_set()


def sleep(seconds: float) -> None:
    """time.sleep, or Cancelled as soon as the calling step is asked to stop."""
    ev = _events.get(threading.get_ident())
    if ev is None:
        time.sleep(seconds)
        return
    if ev.wait(max(0.0, seconds)):
        raise Cancelled
