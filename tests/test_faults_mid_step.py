"""Faults in the middle of failover.manual's switch step (writes paused): the tool killed
(SIGKILL), Ctrl-C, SIGTERM, its connection to the primary dropped, the primary dying, the
leading Sentinel hanging (SIGSTOP) before the tool pings it or between that ping and SENTINEL
FAILOVER, or every Sentinel hanging there. After each: a write goes through within the pause
timeout, the journal says what happened, `--resume` (or the undo, then a new run, or
failover.verify) finishes the job with no node left half-configured (replica-priority 0 or 1,
replica-announced no, writes paused), and from the tool's exit on (through a hung Sentinel's
wake and its 30 s TILT) never two primaries for long.

One lab with the production down-after (3000 ms: the pause is 2.5 s), repaired after each case.
The fault lands while the switch holds (REDIS_HA_HOLD_AFTER_PAUSE_S) after the pause or, with
REDIS_HA_HOLD_AT=failover, after the leader answered its ping; the tool's line says when.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import inventory
from redis_ha import journal as journalmod
from redis_ha.actions.failover import HOLD_AT_ENV, HOLD_ENV
from redis_ha.conn import client
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

from .conftest import ROOT, run_invoke

pytestmark = pytest.mark.lab
PAUSE_S = 2.5
# A Sentinel stopped > 2 s enters TILT for 30 s on waking and acts only after it: a failover it
# carried out late would show then. Watch that long past the wake.
WAKE_WATCH_S = 35.0
TWO_PRIMARIES_MAX_S = 3.0  # generous: the switch itself has two claimants for ~0 s


@pytest.fixture(scope="module")
def plab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    d = tmp_path_factory.mktemp("faults")
    lab = Lab(inventory.load(write_lab_inventory(d, down_after_ms=3000)))
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        lab.down()


def _start(lab: Lab, jdir: Path, to: str, hold: float, at: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "invoke", "failover.manual", "--yes", "--to", to]
    argv += ["--inventory", str(lab.inv.path)]
    env = {**os.environ, HOLD_ENV: str(hold), HOLD_AT_ENV: at, journalmod.ENV_DIR: str(jdir)}
    env["NO_COLOR"] = "1"
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _wait_for(p: subprocess.Popen[str], marker: str) -> str:
    """Read the tool's output until `marker` shows (the hook's line: it holds from there)."""
    assert p.stdout is not None
    seen, deadline = "", time.monotonic() + 60
    while marker not in seen and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line
    assert marker in seen, seen
    return seen


def _write_through(lab: Lab, t_fault: float, to: str | None = None) -> float:
    """Seconds from the fault until a write is acknowledged by whichever node is primary (`to`
    when no Sentinel can say)."""
    deadline = t_fault + 30
    while time.monotonic() < deadline:
        try:
            p = lab.inv.node(to) if to else lab.current_primary()
            c = client(lab.inv, p, timeout=5.0)
            try:
                c.set("fault-test:probe", "1", px=5000)
                return time.monotonic() - t_fault
            finally:
                c.close()
        except (redis.RedisError, OSError):
            time.sleep(0.1)
    raise AssertionError("no write went through within 30 s")


class PrimaryWatch:
    """Samples every node's role (INFO) in a thread: the longest run of samples in which more
    than one node said it was primary, in seconds."""

    MIN_S = 3.0  # watch at least this long, however fast the finish

    def __init__(self, lab: Lab) -> None:
        self.lab, self.longest, self.seen = lab, 0.0, 0
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _claims(self) -> list[str]:
        out = []
        for n in self.lab.inv.nodes:
            try:
                c = client(self.lab.inv, n, timeout=0.5)
                try:
                    if c.info("replication").get("role") == "master":
                        out.append(n.name)
                finally:
                    c.close()
            except (redis.RedisError, OSError):
                pass
        return out

    def _run(self) -> None:
        since: float | None = None
        while not self.stop.is_set():
            now, claims = time.monotonic(), self._claims()
            self.seen += 1
            if len(claims) > 1:
                since = now if since is None else since
                self.longest = max(self.longest, now - since)
            else:
                since = None
            self.stop.wait(0.2)

    def until(self, t: float) -> float:
        """Keep sampling until monotonic time `t` (at least MIN_S), then stop; the longest
        two-primary run."""
        t = max(t, self.t0 + self.MIN_S)
        self.stop.wait(max(0.0, t - time.monotonic()))
        self.stop.set()
        self.thread.join(5)
        assert self.seen >= 3, self.seen  # it really sampled
        return self.longest


def _paused(lab: Lab, name: str) -> bool:
    """A write-class command (PUBLISH, allowed on replicas too) stalls: CLIENT PAUSE WRITE or a
    fence holds the node (Redis 7.0's INFO shows no pause)."""
    c = client(lab.inv, lab.inv.node(name), timeout=1.0)
    try:
        c.publish(factsmod.PAUSE_PROBE_CHANNEL, "")
        return False
    except redis.TimeoutError:
        try:
            return bool(c.ping())  # a PING still answers: paused, not merely slow
        except (redis.RedisError, OSError):
            return False  # slow or gone: not a pause this can tell
    finally:
        c.close()


def _half_configured(lab: Lab) -> list[str]:
    f = factsmod.gather(lab.inv)
    bad = []
    for n in f.nodes:
        if not n.up:
            bad.append(f"{n.name} down")
            continue
        if _paused(lab, n.name):
            bad.append(f"{n.name} writes paused")
        c = client(lab.inv, lab.inv.node(n.name))
        try:
            cfg = c.config_get("replica-priority", "replica-announced")
            if cfg["replica-priority"] != str(lab.inv.settings.replica_priority):
                bad.append(f"{n.name} replica-priority {cfg['replica-priority']}")
            if cfg["replica-announced"] != "yes":
                bad.append(f"{n.name} replica-announced no")
        finally:
            c.close()
    return bad


def _events(jdir: Path) -> list[str]:
    runs = journalmod.runs(jdir)
    return [r["event"] for r in journalmod.read(runs[-1])]


def _fault(lab: Lab, kind: str, p: subprocess.Popen[str], old: str) -> Any:
    if kind in ("sigkill", "ctrl-c", "sigterm"):
        sig = {"sigkill": signal.SIGKILL, "ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM}
        os.killpg(p.pid, sig[kind])
    elif kind == "lost-connection":
        c = client(lab.inv, lab.inv.node(old))
        try:  # every connection the tool has to the primary is cut
            for cl in c.client_list():
                if cl.get("name") == "redis-ha-runbooks" and cl.get("cmd") != "client|list":
                    c.client_kill_filter(_id=cl["id"])
        finally:
            c.close()
    elif kind == "node-dies":
        lab.stop(old, kill=True)
    elif kind.startswith("sentinel-hangs"):  # the leader: the last Sentinel (choose_via)
        lab.signal(lab.inv.sentinels[-1].name, signal.SIGSTOP)
    elif kind == "sentinels-all-hang-at-failover":
        for s in lab.inv.sentinels:
            lab.signal(s.name, signal.SIGSTOP)


CASES = {
    # fault: (hold seconds, hold point, exit code, journal events that must be there, how the
    # job finishes)
    "sigkill": (30, "pause", -9, ["apply"], "resume"),
    "ctrl-c": (30, "pause", 130, ["interrupted", "end"], "resume"),
    "sigterm": (30, "pause", 130, ["interrupted", "end"], "resume"),
    "lost-connection": (1.5, "pause", 0, ["end"], "itself"),
    "node-dies": (1.5, "pause", 1, ["undo", "end"], "verify"),
    # The leader hangs before its ping: SENTINEL FAILOVER goes to the next Sentinel; the switch
    # completes, and the verify step fails honestly on the hung Sentinel (undo: priorities).
    "sentinel-hangs": (1.5, "pause", 1, ["undo", "end"], "verify"),
    # ... or between its ping and SENTINEL FAILOVER: the command is queued in its socket and
    # carried out when it wakes; sent to the next Sentinel too, the switch completes and the
    # woken one, learning the new epoch, does not fail over again.
    "sentinel-hangs-at-failover": (1.5, "failover", 1, ["undo", "end"], "verify"),
    # ... with every other Sentinel hung too: nobody accepts it, the tool unpauses within one
    # pause and says to restart the one holding it before it wakes; done, no failover follows.
    "sentinels-all-hang-at-failover": (1.5, "failover", 1, ["undo", "end"], "verify"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_fault_in_the_switch(plab: Lab, kind: str, tmp_path: Path) -> None:
    hold, at, code, must, finish = CASES[kind]
    lab = plab
    old = lab.current_primary().name
    to = next(n.name for n in lab.inv.nodes if n.name != old)
    jdir = tmp_path / "journal"
    p = _start(lab, jdir, to, hold, at)
    watch: PrimaryWatch | None = None
    try:
        _wait_for(p, f"test hook: holding {hold:g} s at {at}")
        t_fault = time.monotonic()
        _fault(lab, kind, p, old)
        # while the tool still runs its later steps
        waited = _write_through(lab, t_fault, old if kind.startswith("sentinels-all") else None)
        out, _ = p.communicate(timeout=60)
        watch = PrimaryWatch(lab)  # from the tool's exit on
        # A dead tool's pause ends by itself; a live one holds it only while it still switches
        # (the hold, then at most the switch); a dead primary takes Sentinel's failover.
        limit = {"sigkill": PAUSE_S, "ctrl-c": PAUSE_S, "sigterm": PAUSE_S}.get(kind, hold + 4.0)
        limit = limit + 1.0 if kind != "node-dies" else 3.0 + 10.0
        assert waited < limit, (kind, waited)
        assert p.returncode == code, out
        events = _events(jdir)
        assert all(e in events for e in must), events
        watch_until = time.monotonic()
        if kind == "sentinels-all-hang-at-failover":
            leader = lab.inv.sentinels[-1].name
            flat = " ".join(out.split())  # the console wraps long lines
            assert "restart it before it wakes" in flat and f"to {leader} went" in flat, out
            lab.stop(leader, kill=True)  # what the tool says: the queued command dies with it
            for s in lab.inv.sentinels[:-1]:
                lab.signal(s.name, signal.SIGCONT)
            watch_until = time.monotonic() + WAKE_WATCH_S
            lab.up(timeout=60)
            assert lab.current_primary().name == old, out  # known not to happen
        elif kind.startswith("sentinel-hangs"):
            assert lab.current_primary().name == to, out  # switched through another Sentinel
            # which path: skipped at its ping, or the command sent and left unanswered
            said = "went unanswered (it went to" if at == "failover" else "did not answer:"
            assert said in " ".join(out.split()), out
            lab.signal(lab.inv.sentinels[-1].name, signal.SIGCONT)
            watch_until = time.monotonic() + WAKE_WATCH_S
            lab.wait_ready(timeout=40)
        env = {journalmod.ENV_DIR: str(jdir)}
        if finish == "resume":
            r = run_invoke("failover.manual", "--yes", "--resume", "latest", inventory=lab.inv.path,
                           env=env, timeout=120)  # fmt: skip
            assert r.returncode == 0, r.stdout + r.stderr
            assert lab.current_primary().name == to
        elif finish == "itself":  # redis-py reconnected: the switch completed
            assert lab.current_primary().name == to
        elif finish == "verify":
            lab.up(timeout=60)  # the dead node comes back as a replica
            r = run_invoke("failover.verify", inventory=lab.inv.path, env=env)
            assert r.returncode == 0, r.stdout + r.stderr
        else:
            r = run_invoke("failover.manual", "--yes", "--to", to, inventory=lab.inv.path,
                           env=env, timeout=120)  # fmt: skip
            assert r.returncode == 0, r.stdout + r.stderr
        assert _half_configured(lab) == []
        assert healthmod.assess(lab.inv, factsmod.gather(lab.inv)).healthy
        longest = watch.until(watch_until)
        assert longest < TWO_PRIMARIES_MAX_S, f"two primaries for {longest:.1f} s"
        if kind.startswith("sentinel-hangs"):
            assert lab.current_primary().name == to  # the woken Sentinel did not switch again
    finally:
        if watch is not None:
            watch.stop.set()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        for s in lab.inv.sentinels:
            pid = lab.pid(s.name)
            if pid:
                os.kill(pid, signal.SIGCONT)
        lab.up(timeout=60)
        _repair(lab)


def _repair(lab: Lab) -> None:
    """What a failed case may leave for the next: settings, a pause, the lock key (30 s TTL)."""
    for ep in lab.inv.nodes:
        c = client(lab.inv, ep, timeout=2.0)
        try:
            c.execute_command("CLIENT", "UNPAUSE")
            c.config_set("replica-priority", lab.inv.settings.replica_priority)
            c.config_set("replica-announced", "yes")
            if c.info("replication").get("role") == "master":
                c.delete(*c.keys("redis-ha-runbooks:lock:*") or ["-"])
        except redis.RedisError:
            pass
        finally:
            c.close()
