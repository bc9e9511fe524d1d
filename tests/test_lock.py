"""The cluster lock on the real lab: a second holder is refused with the first one named, a dead
holder's lock expires, a primary that refuses writes falls back to the local lock file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redis_ha import journal as journalmod
from redis_ha import lock as lockmod
from redis_ha.conn import call
from redis_ha.lab.cluster import Lab
from redis_ha.lock import ClusterLock, LockHeld

from .conftest import ROOT, run_invoke
from .test_runner import PB, priority, replica_of, standard_priorities


def test_second_holder_is_refused_and_named(lab: Lab, tmp_path: Path) -> None:
    primary = lab.current_primary().name
    first = ClusterLock(lab.inv, "failover-manual", lock_dir=tmp_path / "a").acquire()
    try:
        assert first.mode == "cluster+file" and first.warning is None
        # Another machine: its own lock dir, so only the key on the primary can stop it.
        second = ClusterLock(lab.inv, "replica-rebuild", lock_dir=tmp_path / "b")
        with pytest.raises(LockHeld) as e:
            second.acquire()
        msg = str(e.value)
        assert f"{journalmod.operator()}@{socket.gethostname()} (pid {os.getpid()})" in msg
        assert "is running failover-manual since" in msg and f"key on {primary}" in msg
    finally:
        first.release()
    second.acquire().release()  # free again once released


def test_release_finds_the_key_while_no_primary_is_named(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Sentinels name no primary at the moment of release (they are settling after a
    repair): the key still goes, so the next run is not locked out for 30 s."""
    lk = ClusterLock(lab.inv, "split-brain", lock_dir=tmp_path / "a").acquire()
    assert lk.mode == "cluster+file"
    primary = lab.current_primary()
    assert call(lab.inv, primary, "EXISTS", lk.key) == 1
    monkeypatch.setattr(lockmod, "_primary", lambda _inv: None)
    lk.release()
    assert call(lab.inv, primary, "EXISTS", lk.key) == 0


def test_concurrent_run_is_refused(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_HA_OPERATOR", "alice")
    node = replica_of(lab)
    jdir = tmp_path / "journal"
    held = ClusterLock(lab.inv, "failover-manual", lock_dir=tmp_path / "elsewhere").acquire()
    try:
        r = run_invoke(
            "runbooks.run",
            PB,
            "--yes",
            "--param",
            f"node={node}",
            "--param",
            "priority=42",
            "--param",
            "expect=42",
            inventory=lab.inv.path,
            env={journalmod.ENV_DIR: str(jdir), "REDIS_HA_OPERATOR": "bob"},
        )
    finally:
        held.release()
    assert r.returncode == 4, r.stdout + r.stderr
    assert "alice@" in r.stderr and "is running failover-manual since" in r.stderr
    assert "Traceback" not in r.stderr
    assert priority(lab.inv, node) == "100"
    recs = journalmod.read(journalmod.runs(jdir)[0])
    assert recs[-1]["event"] == "end" and recs[-1]["result"] == "locked"


def test_lock_of_a_dead_holder_expires(lab: Lab, tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from redis_ha import inventory\n"
        "from redis_ha.lock import ClusterLock\n"
        "lk = ClusterLock(inventory.load(sys.argv[1]), 'drill', ttl_ms=1500,"
        " lock_dir=__import__('pathlib').Path(sys.argv[2])).acquire()\n"
        "print(lk.mode, flush=True)\n"
        "time.sleep(60)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(lab.inv.path), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "cluster+file"
        time.sleep(2)  # longer than the TTL: the holder's thread keeps it alive
        with pytest.raises(LockHeld):
            ClusterLock(lab.inv, "other", lock_dir=tmp_path / "other").acquire()
    finally:
        p.kill()
        p.wait()
    t0 = time.monotonic()
    while True:
        try:
            # Same lock dir: the file of the dead pid is stale and taken over too.
            lk = ClusterLock(lab.inv, "other", lock_dir=tmp_path).acquire()
            break
        except LockHeld:
            assert time.monotonic() - t0 < 5, "the dead holder's lock did not expire"
            time.sleep(0.1)
    lk.release()
    assert time.monotonic() - t0 < 2.5


def test_falls_back_to_lock_file_when_primary_refuses_writes(lab: Lab, tmp_path: Path) -> None:
    ep = lab.current_primary()
    call(lab.inv, ep, "CONFIG", "SET", "min-replicas-to-write", "3")
    lk = ClusterLock(lab.inv, "rollback", lock_dir=tmp_path)
    try:
        lk.acquire()
        assert lk.mode == "file"
        assert lk.warning and "NOREPLICAS" in lk.warning
        assert "only excludes operators on this machine" in lk.warning
        holder = json.loads(next(tmp_path.glob(".lock-*")).read_text())
        assert holder["procedure"] == "rollback" and holder["pid"] == os.getpid()
        with pytest.raises(LockHeld, match="is running rollback since"):
            ClusterLock(lab.inv, "failover-manual", lock_dir=tmp_path).acquire()
    finally:
        lk.release()
        call(lab.inv, ep, "CONFIG", "SET", "min-replicas-to-write", "1")
    assert not list(tmp_path.glob(".lock-*"))


_ = standard_priorities  # autouse: every test here starts from replica-priority 100
