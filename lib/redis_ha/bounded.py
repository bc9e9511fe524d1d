"""Bounds on what a run waits for: a step's function in a worker thread with a deadline, and
SIGTERM turned into the Ctrl-C path (journaled, lock released, resumable)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from redis_ha.actions.registry import Outcome


def call(fn: Callable[..., Outcome], timeout: float, *args: Any, **kw: Any) -> Outcome:
    """Run fn in a worker thread; TimeoutError when it takes longer than `timeout`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["v"] = fn(*args, **kw)
        except BaseException as e:  # handed back to the caller's thread
            box["e"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError
    if "e" in box:
        raise box["e"]
    out = box.get("v")
    if not isinstance(out, Outcome):
        return Outcome(True, str(out) if out is not None else "")
    return out


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a run like Ctrl-C: journaled, lock released, resumable."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
