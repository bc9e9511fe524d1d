"""The driver of the fault table (docs/fault-table.md): one cell is (procedure, step, fault) ->
what the fault leaves and how the job is finished. Shared by the test_faults_*.py files, each
with its own lab (so the cells of two files run on two workers at once).

A cell starts the procedure as its own process, waits until the step is half-way (a predicate
on the lab, or a fail point: `hold="step:n"` stops the run right after that step's n-th change,
redis_ha.failpoint), lands the fault, lets a held run go on, and then checks the exit code, the
journal, what the fault left, that the finish (resume, rerun, undo or nothing) completes the
job, that no node is half-configured, that the cluster is healthy, and that never two nodes
claim primary for TWO_PRIMARIES_MAX_S or more.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from redis_ha import facts as factsmod
from redis_ha import failpoint, inventory
from redis_ha import health as healthmod
from redis_ha import journal as journalmod
from redis_ha.conn import CLIENT_NAME, client
from redis_ha.lab import faults
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import FAST_DOWN_AFTER_MS, write_lab_inventory

from .conftest import ROOT, run_invoke
from .test_faults_mid_step import TWO_PRIMARIES_MAX_S, PrimaryWatch, _half_configured, _repair
from .test_replica_rebuild import _load

KEYS = 20_000  # on the primary of every fault lab
HOLD = "hold-redeploy"  # present: the app's restart command holds 30 s, once
FAULTS = ("sigkill", "ctrl-c", "lost-connection", "node-dies", "sentinel-hangs")


@dataclass
class Case:
    """One cell: how to start the procedure against `node`, what shows the step is half-way,
    the fault, the exit code and journal events it must leave, and how the job is finished."""

    setup: Callable[[Lab], str]  # prepares the lab; the node the procedure works on
    argv: Callable[[str], list[str]]  # (node) -> task and arguments
    midway: Callable[[Lab, str, Path], bool] | None  # (lab, node, journal dir): half-way
    fault: str  # one of FAULTS
    code: int
    must: list[str]
    # "resume" | "restart-resume" (lab.up, then resume) | "rerun" | "again" (rerun, no lab.up:
    # the tool repairs what the fault left) | "itself" | "undo" (run `undo`) | "verify" (run
    # `verify`)
    finish: str
    split: bool = False  # two primaries is the fault itself: fenced until the finish
    left: Callable[[Lab, str, Path], None] | None = None  # asserts what the fault left
    done: Callable[[Lab, str], None] | None = None  # asserts the finished job
    undo: Callable[[str], list[str]] | None = None  # the finish when it is "undo" or "verify"
    hold: str | None = None  # fail point "<step-id>:<n>": the run holds after that change
    victim: Callable[[Lab, str], list[str]] | None = None  # what dies/hangs (default: node)
    primary_is_node: bool = False  # after the finish, `node` is the primary
    healthy: bool = True  # the cluster is healthy after the finish


def fault_lab(tmp_path_factory: object, name: str, *, fast: bool = False) -> Iterator[Lab]:
    """A lab with KEYS keys and the production down-after (3000 ms), or with `fast` the test
    labs' (FAST_DOWN_AFTER_MS, Sentinels re-reading INFO every second: a steer is seen in ~1 s,
    not up to 10) for cells whose outcome does not hang on Sentinel's timing. The app's restart
    command (the rollback's redeploy) holds 30 s once when HOLD exists beside the inventory,
    its pid in HOLD.pid, so a fault can land between the config switch and the app running on
    it."""
    d = tmp_path_factory.mktemp(name)  # type: ignore[attr-defined]
    path = write_lab_inventory(d, down_after_ms=FAST_DOWN_AFTER_MS if fast else 3000)
    data = yaml.safe_load(path.read_text())
    h = shlex.quote(str(d / HOLD))
    held = f"rm -f {h}; echo $$ > {h}.pid; exec sleep 30"
    data["app"]["restart_cmd"] = f"sh -c 'if [ -e {h} ]; then {held}; fi'"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    lab = Lab(inventory.load(path))
    try:
        lab.up(timeout=60)
        _load(lab.inv, lab.current_primary(), KEYS)
        yield lab
    finally:
        lab.down()


def step_now(jdir: Path) -> str | None:
    """The step the run's journal last started, None before the first."""
    runs = journalmod.runs(jdir)
    recs = journalmod.read(runs[-1]) if runs else []
    return next((r["step"] for r in reversed(recs) if r["event"] == "step-start"), None)


def events(jdir: Path) -> list[str]:
    return [r["event"] for r in journalmod.read(journalmod.runs(jdir)[-1])]


def records(jdir: Path) -> list[dict]:
    return journalmod.read(journalmod.runs(jdir)[-1])


def no_writes(lab: Lab, node: str) -> bool:
    """`node` cannot acknowledge a write: fenced (writes paused), or a replica."""
    f = factsmod.node_facts(lab.inv, lab.inv.node(node))
    return f.up and (f.writes_paused is True or f.role == "replica")


def held_pid(lab: Lab) -> int | None:
    """The pid of the app's held restart, once it has started."""
    try:
        return int((lab.inv.path.parent / f"{HOLD}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def kill_tool_connections(lab: Lab, node: str) -> int:
    """CLIENT KILL every connection the tool has to `node` (named as ours, not this one)."""
    c = client(lab.inv, faults.endpoint(lab.inv, node))
    try:
        ids = [cl["id"] for cl in c.client_list()
               if cl.get("name") == CLIENT_NAME and cl.get("cmd") != "client|list"]  # fmt: skip
        for i in ids:
            c.client_kill_filter(_id=i)
        return len(ids)
    finally:
        c.close()


def _start(lab: Lab, jdir: Path, argv: list[str], extra: dict[str, str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "invoke", *argv, "--inventory", str(lab.inv.path)]
    env = {**os.environ, journalmod.ENV_DIR: str(jdir), "NO_COLOR": "1", "COLUMNS": "200", **extra}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _land(lab: Lab, case: Case, node: str, p: subprocess.Popen[str], hung: list[str]) -> None:
    """The fault itself."""
    victims = case.victim(lab, node) if case.victim else [node]
    if case.fault in ("sigkill", "ctrl-c"):
        os.killpg(p.pid, signal.SIGKILL if case.fault == "sigkill" else signal.SIGINT)
    elif case.fault == "node-dies":
        for v in victims:
            lab.stop(v, kill=True)
    elif case.fault == "sentinel-hangs":
        for v in victims:
            faults.freeze(lab, faults.endpoint(lab.inv, v))
            hung.append(v)
    elif case.fault == "lost-connection":  # lands only on a connection the tool holds
        cut, until = 0, time.monotonic() + 10
        while not cut and time.monotonic() < until:
            cut = sum(kill_tool_connections(lab, v) for v in victims)
        assert cut, f"the tool held no connection to {victims} to cut"
    else:
        raise AssertionError(f"unknown fault {case.fault!r}")


def run_cell(
    lab: Lab,
    proc: str,
    case: Case,
    tmp_path: Path,
    *,
    after: Callable[[Lab], None] | None = None,
) -> None:
    """Run one cell on `lab` and repair the lab after it (`after` first, for what the cell's
    file set up)."""
    node = case.setup(lab)
    jdir = tmp_path / "journal"
    marker = tmp_path / "held"
    extra = {failpoint.ENV: case.hold, failpoint.ENV_FILE: str(marker)} if case.hold else {}
    p = _start(lab, jdir, case.argv(node), extra)
    watch: PrimaryWatch | None = None
    hung: list[str] = []
    try:
        deadline = time.monotonic() + 60

        def midway() -> bool:
            if case.hold and not marker.exists():
                return False
            return case.midway is None or case.midway(lab, node, jdir)

        while not midway():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()[0][-3000:]
            time.sleep(0.01)
        _land(lab, case, node, p, hung)
        marker.unlink(missing_ok=True)  # a held run goes on (a dead one stays dead)
        out, _ = p.communicate(timeout=120)
        for v in hung:  # the hang was the fault: it ends once the tool has exited
            faults.resume(lab, faults.endpoint(lab.inv, v))
        if case.split:  # the stale primary cannot acknowledge a write while the tool is dead
            assert no_writes(lab, node), out[-3000:]
        else:
            watch = PrimaryWatch(lab)
        assert p.returncode == case.code, out[-3000:]
        evs = events(jdir)
        assert all(e in evs for e in case.must), (evs, out[-3000:])
        if case.left:
            case.left(lab, node, jdir)
        env = {journalmod.ENV_DIR: str(jdir)}
        r = None
        if case.finish == "restart-resume":  # the dead node comes back, then the run goes on
            lab.up(timeout=60)
        if case.finish in ("resume", "restart-resume"):  # the same command, from its journal
            r = run_invoke(*case.argv(node), "--resume", "latest",
                           inventory=lab.inv.path, env=env, timeout=180)  # fmt: skip
        elif case.finish in ("undo", "verify"):
            assert case.undo is not None
            if case.finish == "verify":
                lab.up(timeout=60)  # the dead node comes back first
            r = run_invoke(*case.undo(node), inventory=lab.inv.path, env=env,
                           timeout=180)  # fmt: skip
        elif case.finish in ("rerun", "again"):
            if case.finish == "rerun":
                lab.up(timeout=60)  # the dead node comes back
            r = run_invoke(*case.argv(node), inventory=lab.inv.path,
                           env=env, timeout=180)  # fmt: skip
        else:
            assert case.finish == "itself", case.finish
        if r is not None:
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        watch = watch or PrimaryWatch(lab)  # split-brain: from its resolution on
        if case.primary_is_node:
            assert lab.current_primary().name == node
        if case.done:
            case.done(lab, node)
        assert _half_configured(lab) == []
        if case.healthy:
            assert healthmod.assess(lab.inv, factsmod.gather(lab.inv)).healthy
        longest = watch.until(time.monotonic())
        assert longest < TWO_PRIMARIES_MAX_S, f"two primaries for {longest:.1f} s"
    finally:
        if watch is not None:
            watch.stop.set()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        for v in hung:
            with contextlib.suppress(Exception):
                faults.resume(lab, faults.endpoint(lab.inv, v))
        held = held_pid(lab)
        if held is not None:  # the app's restart runs in its own session: it outlives the tool
            with contextlib.suppress(ProcessLookupError):
                os.kill(held, signal.SIGKILL)
            (lab.inv.path.parent / f"{HOLD}.pid").unlink()
        if after is not None:
            after(lab)
        lab.up(timeout=60)
        _repair(lab)
        lab.wait_ready(timeout=60)
