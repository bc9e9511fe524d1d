"""Training drills: a realistic fault under app traffic, a trainee who responds, a scorecard.

`drill.start` injects the fault while the app simulator runs in the background and prints the
page the trainee would get; the trainee works with the real tasks (status, incident, the
runbooks); `drill.score` stops the traffic and scores what happened from facts, the journals of
the procedures run since the start, and the simulator's report. Nothing is self-reported: a
drill is passed by leaving the cluster healthy without losing sessions, using the runbooks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import journal
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab import faults
from redis_ha.lab.cluster import Lab, pid_alive, proc_state
from redis_ha.lab.scenarios import manual_promotion


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    page: str  # what the trainee is told, as the alert would say it ({primary}, {node})
    expected: tuple[str, ...]  # procedures that resolve it (any one counts)
    par_s: int  # a good response time for a trained engineer
    inject: Callable[[Lab, str, str], dict[str, Any]]  # (lab, primary, replica) -> what was done
    must_move_primary: bool = False


def _fault(kind: str, target: str) -> Callable[[Lab, str, str], dict[str, Any]]:
    def inject(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
        node = primary if target == "primary" else replica
        return faults.inject(lab.inv, kind, node).to_dict()

    return inject


def _nothing(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    return {"did": "no fault: a planned change", "node": primary}


def _promote(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    return {"did": "REPLICAOF NO ONE by hand", "node": manual_promotion(lab, replica)}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "replica-crash",
            "A replica crashed",
            "ALERT redis replicas below 2: {node} is not answering. Sessions are still served.",
            ("replica-rebuild",),
            300,
            _fault("crash", "replica"),
        ),
        Scenario(
            "replica-diverge",
            "A replica silently stopped replicating",
            "ALERT replication link down on {node} for more than 60 s.",
            ("replica-rebuild",),
            300,
            _fault("diverge", "replica"),
        ),
        Scenario(
            "primary-crash",
            "The primary crashed",
            "ALERT redis primary {primary} down; Sentinel failover expected.",
            ("failover-automatic", "replica-rebuild"),
            420,
            _fault("crash", "primary"),
            must_move_primary=True,
        ),
        Scenario(
            "planned-switchover",
            "Planned maintenance on the primary's host",
            "TICKET the host of {primary} gets a kernel patch in 10 minutes: move the primary "
            "off it without losing a session.",
            ("failover-manual",),
            180,
            _nothing,
            must_move_primary=True,
        ),
        Scenario(
            "manual-promotion",
            "A well-meaning colleague promoted a replica by hand",
            "ALERT two redis nodes report role:master ({node} and {primary}).",
            ("split-brain",),
            300,
            _promote,
        ),
    )
}


@dataclass
class Item:
    criterion: str
    points: int
    max_points: int
    note: str


@dataclass
class Scorecard:
    scenario: str
    operator: str
    started: float
    ended: float
    items: list[Item] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(i.points for i in self.items)

    @property
    def max_score(self) -> int:
        return sum(i.max_points for i in self.items)

    @property
    def passed(self) -> bool:
        # Resolved and no session lost are not negotiable; the rest is style and speed.
        return all(i.points == i.max_points for i in self.items if i.criterion in _MUST)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(score=self.score, max_score=self.max_score, passed=self.passed)
        d["elapsed_s"] = round(self.ended - self.started, 1)
        return d


TRAFFIC = "drill-traffic"  # the lab process name of the drill's app simulator
_MUST = ("cluster healthy", "no acknowledged write lost")


def score(
    sc: Scenario,
    state: dict[str, Any],
    *,
    health: healthmod.Health,
    runs: list[dict[str, Any]],
    traffic: dict[str, Any] | None,
    now: float,
) -> Scorecard:
    """The scorecard, from facts only: health now, journals since the start, traffic report."""
    card = Scorecard(sc.name, state.get("operator", "?"), state["started"], now)
    ok = health.healthy
    note = "healthy" if ok else "; ".join(health.problems[:3]) or health.level
    if sc.must_move_primary and health.primary == state.get("primary"):
        ok, note = False, f"the primary is still {health.primary}"
    card.items.append(Item("cluster healthy", 40 if ok else 0, 40, note))

    real = [r for r in runs if not r.get("dry_run")]
    good = [r for r in real if r.get("procedure") in sc.expected and r.get("result") == "completed"]
    used = sorted({str(r.get("procedure")) for r in real})
    card.items.append(
        Item(
            "used the runbook",
            20 if good else 0,
            20,
            f"ran {', '.join(used) or 'no procedure'}; expected {' or '.join(sc.expected)}",
        )
    )
    first_real = min((r["started"] for r in real if r.get("started")), default=None)
    rehearsed = any(
        r.get("dry_run") and first_real is not None and (r.get("started") or 0) <= first_real
        for r in runs
    )
    card.items.append(
        Item(
            "looked before acting (--dry-run first)",
            5 if rehearsed else 0,
            5,
            "dry run before the first change" if rehearsed else "no dry run before changing",
        )
    )
    failed = [r for r in real if r.get("result") != "completed"]
    card.items.append(
        Item(
            "no failed or abandoned runs",
            max(0, 5 - 5 * len(failed)),
            5,
            f"{len(failed)} run(s) ended {', '.join(str(r.get('result')) for r in failed)}"
            if failed
            else "every run finished",
        )
    )
    took = now - state["started"]
    speed = 15 if took <= sc.par_s else (8 if took <= 2 * sc.par_s else 0)
    card.items.append(Item("time to resolve", speed, 15, f"{took:.0f} s (par {sc.par_s} s)"))
    if traffic is None:
        card.items.append(Item("no acknowledged write lost", 0, 15, "no traffic report"))
    else:
        lost = int(traffic.get("missing_writes") or 0) + int(traffic.get("missing_keys") or 0)
        card.items.append(
            Item(
                "no acknowledged write lost",
                15 if lost == 0 else 0,
                15,
                f"{lost} lost, {traffic.get('failed', 0)} failed requests, longest write stall "
                f"{traffic.get('write_stall_s', 0)} s",
            )
        )
    return card


# --- running a drill --------------------------------------------------------------------------


def state_path(inv: Inventory) -> Path:
    return inv.lab_dir / "drill.json"


def load_state(inv: Inventory) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(state_path(inv).read_text())
        return data
    except (OSError, ValueError):
        return None


def start(inv: Inventory, scenario: str, *, rate: int = 500) -> dict[str, Any]:
    """Check the lab is healthy, start background traffic, inject the fault, save the state."""
    if scenario not in SCENARIOS:
        raise LabError(f"unknown scenario {scenario!r} (choose from: {', '.join(SCENARIOS)})")
    lab = Lab(inv)
    old = load_state(inv)
    if old and traffic_alive(int(old.get("traffic_pid") or 0)):
        raise LabError(
            f"a {old['scenario']} drill is already running since "
            f"{journal.utc(old['started'])}; finish it with: invoke drill.score"
        )
    facts = factsmod.gather(inv)
    h = healthmod.assess(inv, facts)
    if not h.healthy or h.primary is None:
        raise LabError(
            "the lab is not healthy; a drill starts from a healthy lab (invoke lab.up): "
            + "; ".join(h.problems)
        )
    sc = SCENARIOS[scenario]
    primary = h.primary
    replica = next(n.name for n in inv.nodes if n.name != primary)
    out = inv.lab_dir / "drill-traffic.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "redis_ha", "lab.traffic", "--inventory", str(inv.path)]
    argv += ["--rate", str(rate), "--json", "--quiet", "--out", str(out), "--settle", "20"]
    # A lab process like the others: `lab.down` stops it, its output is in the lab folder.
    pid = lab.spawn(TRAFFIC, argv, cwd=Path.cwd())
    time.sleep(2.0)  # the simulator loads its keys before the clock starts
    if not pid_alive(pid):
        log = lab.proc_dir(TRAFFIC) / "stdout.log"
        raise LabError(f"the app simulator did not start (see {log})")
    try:
        did = sc.inject(lab, primary, replica)
    except Exception:
        lab.stop(TRAFFIC)
        raise
    state = {
        "scenario": sc.name,
        "operator": journal.operator(),
        "started": time.time(),
        "primary": primary,
        "node": did.get("node", replica),
        "fault": did,
        "traffic_pid": pid,
        "traffic_out": str(out),
        "rate": rate,
    }
    state_path(inv).write_text(json.dumps(state, indent=2))
    return state


def traffic_alive(pid: int) -> bool:
    """Is `pid` still our background simulator (not a zombie, not a recycled PID)?"""
    state, cmd = proc_state(pid)
    return state not in (None, "Z", "X") and b"lab.traffic" in cmd


def stop_traffic(state: dict[str, Any], timeout: float = 60.0) -> dict[str, Any] | None:
    """Stop the background simulator and read its report (it checks writes after settling)."""
    pid = int(state.get("traffic_pid") or 0)
    if pid and traffic_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while traffic_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if traffic_alive(pid):
            os.kill(pid, signal.SIGKILL)
    try:
        data: dict[str, Any] = json.loads(Path(state["traffic_out"]).read_text())
        return data
    except (OSError, ValueError, KeyError):
        return None


def runs_since(inv: Inventory, started: float) -> list[dict[str, Any]]:
    """Summaries of the procedure runs against this inventory since `started`."""
    out = []
    for p in journal.runs():
        s = journal.summary(journal.read(p))
        if (s.get("started") or 0) >= started and s.get("inventory") == str(inv.path):
            s["run"] = p.stem
            out.append(s)
    return out


def finish(inv: Inventory) -> tuple[Scorecard, Path]:
    """Stop the drill, score it, and save the scorecard next to the journals."""
    state = load_state(inv)
    if state is None:
        raise LabError("no drill is running on this lab (start one with: invoke drill.start)")
    sc = SCENARIOS[state["scenario"]]
    traffic = stop_traffic(state)
    now = time.time()
    h = healthmod.assess(inv, factsmod.gather(inv))
    card = score(sc, state, health=h, runs=runs_since(inv, state["started"]), traffic=traffic,
                 now=now)  # fmt: skip
    d = journal.journal_dir()
    d.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(state["started"]))
    path = d / f"{stamp}-drill-{sc.name}.scorecard.json"
    path.write_text(json.dumps(card.to_dict(), indent=2))
    state_path(inv).unlink(missing_ok=True)
    return card, path
