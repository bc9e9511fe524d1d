"""Fail points and stopping a step's worker: pure logic and threads, no cluster."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from redis_ha import bounded, cancel, failpoint
from redis_ha.actions.registry import Outcome
from redis_ha.errors import InventoryError


def test_reads_are_not_changes() -> None:
    for args in [("INFO", "replication"), ("CONFIG", "GET", "x"), ("sentinel", "masters"),
                 ("CONFIG GET", "x"), ("CLIENT LIST",), ("SENTINEL MASTERS",),
                 ("CLIENT", "LIST"), ("PUBLISH", "c", "m"), ("SCAN", 0)]:  # fmt: skip
        assert not failpoint.is_change(args), args
    for args in [("CONFIG", "SET", "replica-priority", 0), ("REPLICAOF", "h", 1),
                 ("CLIENT", "PAUSE", 100, "WRITE"), ("SENTINEL", "FAILOVER", "m"),
                 ("SENTINEL", "CONFIG", "SET", "x", 1), ("SET", "k", "v"),
                 ("FLUSHALL",), ("CONFIG SET", "x", 1), ("CLIENT KILL", "ID", 3)]:  # fmt: skip
        assert failpoint.is_change(args), args


def test_armed_is_parsed_and_bad_values_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(failpoint.ENV, raising=False)
    assert failpoint.armed() is None
    monkeypatch.setenv(failpoint.ENV, "restore-priority:2")
    assert failpoint.armed() == ("restore-priority", 2)
    for bad in ["steer", "steer:0", "steer:x", ":1"]:
        monkeypatch.setenv(failpoint.ENV, bad)
        with pytest.raises(InventoryError, match=failpoint.ENV):
            failpoint.armed()


def test_refused_unless_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoint.ENV, "steer:1")
    failpoint.refuse_unless_lab(True)
    with pytest.raises(InventoryError, match="lab inventory only"):
        failpoint.refuse_unless_lab(False)


def test_holds_after_the_nth_change_of_its_step_until_released(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "held"
    monkeypatch.setenv(failpoint.ENV, "fence:2")
    monkeypatch.setenv(failpoint.ENV_FILE, str(marker))

    def step() -> Outcome:
        """A step's apply, in its worker thread as the runner runs it."""
        failpoint.command(("INFO",))  # a read does not count
        failpoint.command(("CLIENT", "PAUSE", 1, "WRITE"))
        assert not marker.exists()
        threading.Timer(0.3, marker.unlink).start()
        t0 = time.monotonic()
        failpoint.command(("CONFIG", "SET", "min-replicas-to-write", 9))
        return Outcome(True, f"{time.monotonic() - t0:.2f}")

    def other_step() -> Outcome:
        failpoint.command(("CONFIG", "SET", "a", 1))
        failpoint.command(("CONFIG", "SET", "a", 1))
        return Outcome(True, "")

    failpoint.enter("other")
    bounded.call(other_step, 5)
    assert not marker.exists()  # another step's changes do not count
    failpoint.enter("fence")
    failpoint.command(("CONFIG", "SET", "a", 1))  # not a step's worker (the lock's refresh)
    failpoint.command(("CONFIG", "SET", "a", 1))
    assert not marker.exists()
    held_s = float(bounded.call(step, 10).message)
    assert held_s >= 0.25  # held until the file went
    assert not marker.exists()
    failpoint.enter(None)


def _ctrl_c() -> None:
    """A real SIGINT: it wakes the main thread's join, as the terminal's Ctrl-C does."""
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_the_worker_at_its_next_wait_and_its_cleanup_runs() -> None:
    cleaned = threading.Event()

    def step() -> Outcome:
        try:
            cancel.sleep(30)
            return Outcome(True, "not reached")
        finally:
            cleaned.set()

    threading.Timer(0.2, _ctrl_c).start()
    t0 = time.monotonic()
    with pytest.raises(bounded.Interrupted) as caught:
        bounded.call(step, 60)
    assert cleaned.is_set() and time.monotonic() - t0 < 5
    assert caught.value.outcome is None
    assert "stopped at its next wait" in caught.value.note


def test_a_step_past_its_safe_point_finishes_and_says_so() -> None:
    def step() -> Outcome:
        time.sleep(0.6)  # not a cancellable wait: like the switch after SENTINEL FAILOVER
        return Outcome(True, "switched")

    threading.Timer(0.2, _ctrl_c).start()
    with pytest.raises(bounded.Interrupted) as caught:
        bounded.call(step, 60)
    assert caught.value.outcome is not None and caught.value.outcome.ok
    assert "finished after the interrupt: switched" in caught.value.note


def test_a_timed_out_step_is_told_to_stop() -> None:
    stopped = threading.Event()

    def step() -> Outcome:
        try:
            cancel.sleep(30)
        except cancel.Cancelled:
            stopped.set()
            raise
        return Outcome(True, "")

    with pytest.raises(TimeoutError):
        bounded.call(step, 0.2)
    assert stopped.wait(2)
    assert not cancel.requested()  # only the worker was asked
