"""Bounds on what a run waits for: a step's function in a worker thread with a deadline, and
SIGTERM turned into the Ctrl-C path (journaled, lock released, resumable).

Interrupted or timed out, the worker is asked to stop at its next cancellable wait
(redis_ha.cancel) and, on Ctrl-C, waited for up to STOP_GRACE_S so what it did is known before
the run journals it: the step's cleanup has run, or it finished meanwhile."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from redis_ha import cancel, ui
from redis_ha.actions.registry import Outcome

# After Ctrl-C, how long the step's worker may take to reach a safe point (the switch, past
# SENTINEL FAILOVER, finishes: its promotion wait is bounded by failover-timeout, 10 s).
STOP_GRACE_S = 15.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a step, with what its worker did after: `outcome` when it finished
    meanwhile, `note` (one line) in every case."""

    def __init__(self, note: str, outcome: Outcome | None = None) -> None:
        super().__init__(note)
        self.note, self.outcome = note, outcome


def call(fn: Callable[..., Outcome], timeout: float, *args: Any, **kw: Any) -> Outcome:
    """Run fn in a worker thread; TimeoutError when it takes longer than `timeout`."""
    box: dict[str, Any] = {}
    stop, ended = threading.Event(), threading.Event()

    def target() -> None:
        cancel.register(stop)
        try:
            box["v"] = fn(*args, **kw)
        except BaseException as e:  # handed back to the caller's thread
            box["e"] = e
        finally:
            cancel.unregister()
            ended.set()

    # Waited for through an Event, not Thread.join: a join that Ctrl-C interrupts can leave
    # the thread marked as ended while it still runs.
    threading.Thread(target=target, daemon=True).start()
    try:
        ended.wait(timeout)
    except KeyboardInterrupt:
        stop.set()
        raise _after_interrupt(ended, box) from None
    if not ended.is_set():
        stop.set()  # abandoned: it stops at its next cancellable wait instead of acting later
        raise TimeoutError
    if "e" in box:
        raise box["e"]
    return _outcome(box.get("v"))


def _outcome(v: Any) -> Outcome:
    if not isinstance(v, Outcome):
        return Outcome(True, str(v) if v is not None else "")
    return v


def _after_interrupt(ended: threading.Event, box: dict[str, Any]) -> Interrupted:
    """Wait (bounded; a second Ctrl-C stops waiting) for the worker, and say what it did."""
    ui.err_console.print(
        f"interrupted: letting the step stop safely (at most {STOP_GRACE_S:g} s; "
        "Ctrl-C again to leave at once)",
        markup=False,
    )
    try:
        ended.wait(STOP_GRACE_S)
    except KeyboardInterrupt:
        return Interrupted("interrupted twice: the step may still be running as the tool exits")
    if not ended.is_set():
        return Interrupted(
            f"the step was still running {STOP_GRACE_S:g} s after the interrupt, as the tool exits"
        )
    e = box.get("e")
    if isinstance(e, cancel.Cancelled):
        return Interrupted("the step stopped at its next wait; its cleanup ran")
    if e is not None:
        return Interrupted(f"the step ended with an error after the interrupt: {e}")
    out = _outcome(box.get("v"))
    verb = "finished" if out.ok else "failed"
    return Interrupted(f"the step {verb} after the interrupt: {out.message}", out)


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
