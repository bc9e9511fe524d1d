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
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redis_ha import appconfig, assessment, journal
from redis_ha import drift as driftmod
from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import view as viewmod
from redis_ha.actions.cluster import writes_accepted
from redis_ha.actions.rollback import probe_sessions
from redis_ha.appconfig import envfile
from redis_ha.cli.names import command
from redis_ha.conn import client
from redis_ha.errors import HAError, LabError
from redis_ha.inventory import Inventory
from redis_ha.lab import faults, partition, scenarios
from redis_ha.lab.cluster import Lab, child_env, partitionable, pid_alive, proc_state
from redis_ha.lab.scenarios import manual_promotion
from redis_ha.triage import FALLBACK


@dataclass(frozen=True)
class Step:
    """One move of the recommended response, as an operator makes it.

    Either a task run as an operator runs it (`task` with its options: a dry run first, then
    the real run with `--yes` when the task takes it), or a named step done through the lab
    (`do`: what a person does by hand, e.g. restart a process). `interim` marks a stand-in for a
    procedure that does not exist yet (the scenario's `procedure` names the one to use).
    """

    say: str
    task: str | None = None
    args: tuple[tuple[str, str], ...] = ()  # (option, value); "{primary}", "{node}" filled in
    yes: bool = True  # pass --yes (tasks that never ask take no such option)
    do: Callable[[Lab, dict[str, Any]], str] | None = None
    interim: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    page: str  # what the trainee is told, as the alert would say it ({primary}, {node})
    expected: tuple[str, ...]  # procedures that resolve it (any one counts)
    par_s: int  # a good response time for a trained engineer
    inject: Callable[[Lab, str, str], dict[str, Any]]  # (lab, primary, replica) -> what was done
    must_move_primary: bool = False
    difficulty: str = "easy"
    procedure: str = ""  # the runbook the response follows (may not be written yet: `interim`)
    auto: tuple[Step, ...] = ()  # the recommended response, run by `drill.run --auto`
    partition: bool = False  # needs a partitionable lab (lab/partition.py)
    # A goal beyond "the cluster is healthy": (inventory) -> (criterion, ok, note).
    resolved: Callable[[Inventory], tuple[str, bool, str]] | None = None
    healthy_after: bool = True  # False: the response leaves the cluster down (a rollback)

    @property
    def interim(self) -> bool:
        """True when --auto stands in for a procedure that is not written yet."""
        return any(s.interim for s in self.auto)


def _fault(kind: str, target: str) -> Callable[[Lab, str, str], dict[str, Any]]:
    def inject(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
        node = primary if target == "primary" else replica
        return faults.inject(lab.inv, kind, node).to_dict()

    return inject


def _nothing(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    return {"did": "no fault: a planned change", "node": primary}


def _promote(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    return {"did": "REPLICAOF NO ONE by hand", "node": manual_promotion(lab, replica)}


def _freeze(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    old, new = scenarios.freeze_and_return(lab)
    return {"did": f"froze {old} until {new} was promoted, then resumed it", "node": old}


def _sentinels(n: int) -> Callable[[Lab, str, str], dict[str, Any]]:
    def inject(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
        names = scenarios.sentinels_down(lab, n)
        return {"did": f"killed {', '.join(names)} (SIGKILL)", "node": names[0]}

    return inject


def _partition(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    out = scenarios.run(lab, "partition", write_s=1.0)
    return {"did": f"isolated {primary}; a client kept writing to it", "node": primary, **out}


def _all_down(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    return {"did": "killed every node", "node": ", ".join(scenarios.all_nodes_down(lab))}


# The supervisor's restart delay: the rendered systemd unit's RestartSec (redis_ha.units).
SUPERVISOR_RESTART_S = 1.0


def _restart_empty(lab: Lab, primary: str, replica: str) -> dict[str, Any]:
    # Through the safe-start wrapper, as runbooks/safe-restart.md says to install it: the drill
    # rehearses what follows (a handover), not the loss the wrapper exists to prevent. The page
    # comes with the crash, before the supervisor restarts it: what on-call sees is the primary
    # down, the failover (the wrapper's, or Sentinel's) to verify.
    node = lab.inv.node(primary)
    return faults.restart_empty(lab, node, safe=True, after_s=SUPERVISOR_RESTART_S).to_dict()


def _wait_failover(lab: Lab, state: dict[str, Any]) -> str:
    new = scenarios.wait_new_primary(lab.inv, state["primary"], timeout=60)
    return f"the Sentinels promoted {new}"


def _restart_processes(lab: Lab, state: dict[str, Any]) -> str:
    """Start what is down, from its own config (the lab's `lab.up`; elsewhere the supervisor)."""
    res = lab.up(timeout=60)
    return f"started {', '.join(res.started) or 'nothing (all running)'}"


def _heal(lab: Lab, state: dict[str, Any]) -> str:
    was = partition.heal(lab)
    lab.wait_ready(30)
    return f"the network came back for {', '.join(was) or 'nobody'}; the cluster settled"


def _app_on_single(lab: Lab, state: dict[str, Any]) -> str:
    """Watch the app come back (its error rate, on call): its session writes reach the single
    instance. The rollback's own probe proves the config works, not that the app took it."""
    inv = lab.inv
    assert inv.single is not None
    c = client(inv, inv.single, timeout=2.0)
    try:

        def sets() -> int:
            return int(c.info("commandstats").get("cmdstat_set", {}).get("calls", 0))

        first, deadline = sets(), time.monotonic() + 30
        while sets() < first + 20:
            if time.monotonic() > deadline:
                raise LabError("the app sent no session writes to the single instance in 30 s")
            time.sleep(0.2)
        return f"the app writes sessions to {inv.single.name} ({sets() - first} SETs seen)"
    finally:
        c.close()


def _no_drift(inv: Inventory) -> tuple[str, bool, str]:
    drifts, _ = driftmod.find_drift(inv, factsmod.gather(inv, detail=False))
    return "live settings match the inventory", not drifts, "; ".join(map(str, drifts)) or "none"


def _writes_ok(inv: Inventory) -> tuple[str, bool, str]:
    out = writes_accepted(viewmod.take(inv))
    return "the primary accepts writes", out.ok, out.message


def _on_single(inv: Inventory) -> tuple[str, bool, str]:
    out = probe_sessions(inv, appconfig.SINGLE)
    return "the app serves sessions from the single instance", out.ok, out.message


CHECK = Step("verify the whole cluster (the health-check runbook)", task="check")
VERIFY = Step(
    "verify after the failover", task="failover.verify", args=(("old", "{primary}"),), yes=False
)
WAIT_FAILOVER = Step("wait for the alert: Sentinel promoted a replica", do=_wait_failover)
REBUILD = Step("rebuild the replica", task="replica.rebuild", args=(("node", "{node}"),))
RECOVER = Step("recover from split-brain", task="splitbrain.recover")
REPAIR_SENTINELS = Step(
    "repair the Sentinels (the sentinel-repair runbook)", task="sentinel.repair"
)
RELIEVE_MEMORY = Step("relieve the memory pressure (the runbook)", task="memory.relieve")
CONVERGE = Step("put the drifted settings back (the config-drift runbook)", task="config.converge")

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
            procedure="replica-rebuild",
            auto=(REBUILD,),
        ),
        Scenario(
            "replica-diverge",
            "A replica silently stopped replicating",
            "ALERT replication link down on {node} for more than 60 s.",
            ("replica-rebuild",),
            300,
            _fault("diverge", "replica"),
            difficulty="medium",
            procedure="replica-rebuild",
            auto=(REBUILD,),
        ),
        Scenario(
            "primary-crash",
            "The primary crashed",
            "ALERT redis primary {primary} down; Sentinel failover expected.",
            ("failover-automatic", "replica-rebuild"),
            420,
            _fault("crash", "primary"),
            must_move_primary=True,
            procedure="failover-automatic",
            auto=(
                WAIT_FAILOVER,
                VERIFY,
                Step("restart the old primary's process (runbook step 2)", do=_restart_processes),
                VERIFY,
            ),
        ),
        Scenario(
            "primary-freeze",
            "The primary hung, Sentinel failed over, then it came back",
            "ALERT redis primary {node} stopped answering for several seconds; it answers again.",
            ("failover-automatic", "split-brain"),
            300,
            _freeze,
            must_move_primary=True,
            difficulty="medium",
            procedure="split-brain",
            # It returns still claiming primary until Sentinel's next INFO (up to 10 s): the
            # failover-automatic runbook's step 1 sends that to split-brain, then verify.
            auto=(RECOVER, VERIFY),
        ),
        Scenario(
            "sentinel-down",
            "A Sentinel crashed",
            "ALERT sentinel {node} is not answering; 2 of 3 Sentinels left.",
            ("sentinel-repair", "health-check"),
            300,
            _sentinels(1),
            procedure="sentinel-repair",
            auto=(REPAIR_SENTINELS, CHECK),
        ),
        Scenario(
            "two-sentinels-down",
            "Two Sentinels crashed: no failover can be authorised",
            "ALERT 2 of 3 Sentinels are not answering ({node} among them): quorum lost.",
            ("sentinel-repair", "health-check"),
            300,
            _sentinels(2),
            difficulty="medium",
            procedure="sentinel-repair",
            auto=(REPAIR_SENTINELS, CHECK),
        ),
        Scenario(
            "split-brain",
            "A network partition isolates the primary; clients on its side keep writing",
            "ALERT two redis nodes report role:master ({primary} cut off from the cluster).",
            ("split-brain",),
            600,
            _partition,
            must_move_primary=True,
            difficulty="hard",
            procedure="split-brain",
            auto=(
                RECOVER,
                Step("the network comes back (end of the partition)", do=_heal),
                CHECK,
            ),
            partition=True,
        ),
        Scenario(
            "manual-promotion",
            "A well-meaning colleague promoted a replica by hand",
            "ALERT two redis nodes report role:master ({node} and {primary}).",
            ("split-brain",),
            300,
            _promote,
            difficulty="medium",
            procedure="split-brain",
            auto=(RECOVER,),
        ),
        Scenario(
            "all-down",
            "Every Redis node is down and will not come back soon: roll back",
            "ALERT every redis node is down; sessions are failing. The cluster cannot be "
            "repaired within the 30-minute budget.",
            ("rollback",),
            900,
            _all_down,
            difficulty="hard",
            procedure="rollback",
            auto=(
                Step("roll back to the single instance", task="rollback"),
                Step("watch the app serve sessions again", do=_app_on_single),
            ),
            resolved=_on_single,
            healthy_after=False,
        ),
        Scenario(
            "restart-empty",
            "The primary crashed and its supervisor restarts it empty (safe-start installed)",
            "ALERT redis {primary} crashed; its supervisor restarts it in 1 s, empty (no "
            "persistence).",
            ("failover-automatic",),
            300,
            _restart_empty,
            must_move_primary=True,
            difficulty="medium",
            procedure="failover-automatic",
            auto=(WAIT_FAILOVER, VERIFY),
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
            procedure="failover-manual",
            # Nothing is wrong: incident says so, and names the planned failover for the work.
            auto=(Step("planned failover", task="failover.manual"),),
        ),
        Scenario(
            "memory-pressure",
            "The primary is out of memory (noeviction): writes refused",
            "ALERT redis {primary}: OOM command not allowed when used memory > 'maxmemory'.",
            ("memory-pressure", "health-check"),
            300,
            _fault("oom", "primary"),
            difficulty="medium",
            procedure="memory-pressure",
            auto=(RELIEVE_MEMORY, CHECK),
            resolved=_writes_ok,
        ),
        Scenario(
            "config-drift",
            "A live setting was changed by hand away from the inventory",
            "TICKET config.drift reports {primary}: min-replicas-to-write differs from the "
            "inventory.",
            ("config-drift", "health-check"),
            300,
            _fault("drift", "primary"),
            procedure="config-drift",
            auto=(CONVERGE, CHECK),
            resolved=_no_drift,
        ),
    )
}


@dataclass
class Item:
    criterion: str
    points: int
    max_points: int
    note: str
    must: bool = False  # a drill passes only with full marks on every `must` item


@dataclass
class Scorecard:
    scenario: str
    operator: str
    started: float
    ended: float
    items: list[Item] = field(default_factory=list)
    mode: str = "trainee"  # or "auto": drill.run --auto ran the recommended response
    response: list[dict[str, Any]] = field(default_factory=list)  # --auto: each step, timed

    @property
    def score(self) -> int:
        return sum(i.points for i in self.items)

    @property
    def max_score(self) -> int:
        return sum(i.max_points for i in self.items)

    @property
    def passed(self) -> bool:
        # Resolved and no session lost are not negotiable; the rest is style and speed.
        return all(i.points == i.max_points for i in self.items if i.must)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(score=self.score, max_score=self.max_score, passed=self.passed)
        d["elapsed_s"] = round(self.ended - self.started, 1)
        return d


TRAFFIC = "drill-traffic"  # the lab process name of the drill's app simulator


def score(
    sc: Scenario,
    state: dict[str, Any],
    *,
    health: healthmod.Health,
    runs: list[dict[str, Any]],
    traffic: dict[str, Any] | None,
    now: float,
    resolved: tuple[str, bool, str] | None = None,
) -> Scorecard:
    """The scorecard, from facts only: health now (or the scenario's own goal, `resolved`),
    journals since the start, traffic report."""
    card = Scorecard(sc.name, state.get("operator", "?"), state["started"], now)
    card.mode = state.get("mode", "trainee")
    if resolved is not None:
        name, ok, note = resolved
        card.items.append(Item(name, 40 if ok else 0, 40, note, must=True))
    if sc.healthy_after:
        ok = health.healthy
        note = "healthy" if ok else "; ".join(health.problems[:3]) or health.level
        if sc.must_move_primary and health.primary == state.get("primary"):
            ok, note = False, f"the primary is still {health.primary}"
        card.items.append(Item("cluster healthy", 40 if ok else 0, 40, note, must=True))

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
        card.items.append(Item("no acknowledged write lost", 0, 15, "no traffic report", True))
    else:
        lost = int(traffic.get("missing_writes") or 0) + int(traffic.get("missing_keys") or 0)
        card.items.append(
            Item(
                "no acknowledged write lost",
                15 if lost == 0 else 0,
                15,
                f"{lost} lost, {traffic.get('failed', 0)} failed requests, longest write stall "
                f"{traffic.get('write_stall_s', 0)} s",
                must=True,
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


def scenario_named(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise LabError(f"unknown scenario {name!r} (choose from: {', '.join(SCENARIOS)})")
    return SCENARIOS[name]


def _refuse_running(inv: Inventory) -> None:
    old = load_state(inv)
    if old and traffic_alive(int(old.get("traffic_pid") or 0)):
        raise LabError(
            f"a {old['scenario']} drill is already running since "
            f"{journal.utc(old['started'])}; finish it with: {command('drill.score')}"
        )


def start(
    inv: Inventory, scenario: str, *, rate: int = 500, mode: str = "trainee"
) -> dict[str, Any]:
    """Check the lab is healthy, start background traffic, inject the fault, save the state."""
    sc = scenario_named(scenario)
    lab = Lab(inv)
    _refuse_running(inv)
    if sc.partition:
        partition.require_partitionable(lab)
    h = viewmod.take(inv).health
    if not h.healthy or h.primary is None:
        raise LabError(
            f"the lab is not healthy; a drill starts from a healthy lab ({command('lab.up')}): "
            + "; ".join(h.problems)
        )
    primary = h.primary
    replica = next(n.name for n in inv.nodes if n.name != primary)
    out = inv.lab_dir / "drill-traffic.json"
    ready = inv.lab_dir / "drill-traffic.ready"
    out.unlink(missing_ok=True)
    ready.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "redis_ha", "lab.traffic", "--inventory", str(inv.path)]
    argv += ["--rate", str(rate), "--json", "--quiet", "--out", str(out), "--settle", "20"]
    argv += ["--ready-file", str(ready)]
    env = appconfig.env_file(inv) if inv.app.get("config_backend", "envfile") == "envfile" else None
    if env is not None and env.exists():
        argv += ["--env-file", str(env)]  # the app follows its config, through a rollback too
    # A lab process like the others: `lab.down` stops it, its output is in the lab folder.
    pid = lab.spawn(TRAFFIC, argv, cwd=Path.cwd())
    # The fault comes once the simulator has loaded its sessions and its clock runs.
    deadline = time.monotonic() + 60
    while not ready.exists():
        if not pid_alive(pid) or time.monotonic() > deadline:
            lab.stop(TRAFFIC)
            log = lab.proc_dir(TRAFFIC) / "stdout.log"
            raise LabError(f"the app simulator did not start (see {log})")
        time.sleep(0.05)
    try:
        did = sc.inject(lab, primary, replica)
    except Exception:
        lab.stop(TRAFFIC)
        raise
    state = {
        "scenario": sc.name,
        "operator": journal.operator(),
        "mode": mode,
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


def finish(inv: Inventory, response: list[dict[str, Any]] | None = None) -> tuple[Scorecard, Path]:
    """Stop the drill, score it, and save the scorecard next to the journals."""
    state = load_state(inv)
    if state is None:
        raise LabError(f"no drill is running on this lab (start one with: {command('drill.run')})")
    sc = SCENARIOS[state["scenario"]]
    traffic = stop_traffic(state)
    now = time.time()
    h = viewmod.take(inv).health
    card = score(
        sc,
        state,
        health=h,
        runs=runs_since(inv, state["started"]),
        traffic=traffic,
        now=now,
        resolved=sc.resolved(inv) if sc.resolved else None,
    )
    card.response = response or []
    d = journal.journal_dir()
    d.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(state["started"]))
    path = d / f"{stamp}-drill-{sc.name}{SUFFIX}"
    path.write_text(json.dumps(card.to_dict(), indent=2))
    state_path(inv).unlink(missing_ok=True)
    return card, path


# --- the lab in a known state, the recommended response, the history --------------------------


def _known_state_problems(inv: Inventory) -> list[str]:
    """Why the lab is not the healthy, agreeing, undrifted cluster a drill starts from."""
    v = viewmod.take(inv)
    h = v.health
    drifts, _ = driftmod.find_drift(inv, v.facts)
    return [*h.problems, *(str(d) for d in drifts)] or ([] if h.healthy else [h.level])


def prepare(inv: Inventory) -> Lab:
    """The lab in a known state: network healed, every process up, the app on Sentinel.

    A lab that is still not healthy (or has drifted settings) after that is started afresh
    (lab.down, lab.up): a drill must not inherit the last one's damage.
    """
    lab = Lab(inv)
    _refuse_running(inv)
    if partitionable(inv) and partition.proxy_pid(lab) is not None:
        partition.heal(lab)
    env = appconfig.env_file(inv) if inv.app.get("env_file") else None
    if (
        env is not None
        and env.exists()
        and appconfig.mode_of(envfile.read(env)) != appconfig.SENTINEL
    ):
        env.unlink()  # lab.up writes the Sentinel-mode file again
    lab.up(timeout=60)
    if _known_state_problems(inv):
        lab.down()
        lab.up(timeout=60)
        left = _known_state_problems(inv)
        if left:
            raise LabError("the lab is not healthy even when started afresh: " + "; ".join(left))
    return lab


def _fill(template: str, state: dict[str, Any]) -> str:
    return template.format(primary=state["primary"], node=state["node"])


def task_argv(inv: Inventory, step: Step, state: dict[str, Any]) -> list[str]:
    """The command line an operator would type for `step` (without --dry-run / --yes)."""
    assert step.task is not None
    argv = [step.task]
    for opt, value in step.args:
        argv += [f"--{opt.replace('_', '-')}", _fill(value, state)]
    return [*argv, "--inventory", str(inv.path)]


def _run_task(argv: list[str]) -> int:
    """Run one task as a separate process, its output on this terminal (the operator's view)."""
    cmd = [sys.executable, "-m", "redis_ha", *argv]
    return subprocess.run(cmd, env=child_env(), stdin=subprocess.DEVNULL, check=False).returncode


def first_finding(inv: Inventory, sc: Scenario) -> dict[str, Any]:
    """What an on-call engineer does first: `incident --json`. Its first finding on the faulted
    lab must lead to a runbook that resolves the scenario (the drill is triage's test too)."""
    t0 = time.monotonic()
    while True:  # a cluster in motion may be unexplained for a moment: assess again, as a person
        f = assessment.assess(inv).first
        if f is None or f.diagnosis != FALLBACK.name or time.monotonic() - t0 > 10:
            break
        time.sleep(0.5)
    runbook = f.runbook if f else None
    ok = runbook in sc.expected
    note = f"{f.diagnosis} -> {runbook} (step {f.step})" if f else "no finding"
    return {
        "step": "incident --json: the first finding",
        "ok": ok,
        "runbook": runbook,
        "note": note + ("" if ok else f"; expected {' or '.join(sc.expected)}"),
        "interim": False,
        "seconds": round(time.monotonic() - t0, 1),
    }


def respond(lab: Lab, sc: Scenario, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the scenario's recommended response, step by step; stop at the first failure.

    Each task runs as an operator runs it: a dry run first, then for real with --yes.
    """
    done: list[dict[str, Any]] = [first_finding(lab.inv, sc)]
    for step in sc.auto:
        t0 = time.monotonic()
        rec: dict[str, Any] = {"step": step.say, "interim": step.interim}
        try:
            if step.task:
                argv = task_argv(lab.inv, step, state)
                rec["command"] = command(" ".join(argv[:-2]))
                code = _run_task([*argv, "--dry-run"])
                if code == 0:
                    code = _run_task([*argv, "--yes"] if step.yes else argv)
                rec.update(ok=code == 0, note=f"exit {code}")
            else:
                assert step.do is not None
                rec.update(ok=True, note=step.do(lab, state))
        except HAError as e:
            rec.update(ok=False, note=str(e))
        rec["seconds"] = round(time.monotonic() - t0, 1)
        done.append(rec)
        if not rec["ok"]:
            break
    return done


def run(
    inv: Inventory, scenario: str, *, auto: bool = False, rate: int = 500
) -> tuple[dict[str, Any], tuple[Scorecard, Path] | None]:
    """A whole drill: the lab to a known state, traffic, the fault; with `auto`, the
    recommended response and the scorecard (else the trainee responds, then drill.score)."""
    sc = scenario_named(scenario)
    lab = prepare(inv)
    state = start(inv, sc.name, rate=rate, mode="auto" if auto else "trainee")
    if not auto:
        return state, None
    try:
        response = respond(lab, sc, state)
    except BaseException:
        stop_traffic(state, timeout=5)  # never leave the simulator running behind an error
        state_path(inv).unlink(missing_ok=True)
        raise
    return state, finish(inv, response)


SUFFIX = ".scorecard.json"


def history(operator: str | None = None) -> list[dict[str, Any]]:
    """Every saved scorecard (oldest first), optionally one person's."""
    cards = []
    for p in sorted(journal.journal_dir().glob(f"*{SUFFIX}")):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if operator is None or d.get("operator") == operator:
            d["saved"] = str(p)
            cards.append(d)
    return sorted(cards, key=lambda d: float(d.get("started") or 0))
