"""Execute a playbook step by step: show the runbook text, check guards, plan, confirm, apply,
verify.

The loop for each step, after the lock is in hand:
  text -> one view -> guards on it (a failure refuses the step) -> the action's plan from the same
  view, shown -> confirm -> apply that plan (with timeout) -> verifications (one fresh view per
  poll, until true or timed out) -> journal record with the plan and ctx.state.
A failed or refused step offers to undo the completed steps in reverse order (automatic with
--yes). `--dry-run` is the same path without the apply stage: it prints and journals the very
plans the run would apply, from the same functions, and threads each plan's recorded state into
the next step. Ctrl-C, a quit answer or SIGTERM leave a journal that `--resume RUN` continues
from the first unfinished step; actions themselves bound every temporary state with a timeout.

Exit codes: 0 done, 1 a step failed, 2 a guard refused, 3 the operator stopped, 4 locked,
130 interrupted.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from redis_ha import acl as aclmod
from redis_ha import bounded, failpoint, ui
from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha import journal as journalmod
from redis_ha import lock as lockmod
from redis_ha import playbook as playbookmod
from redis_ha import resume as resumemod
from redis_ha import state as statemod
from redis_ha import target as targetmod
from redis_ha import view as viewmod
from redis_ha.actions import registry
from redis_ha.actions.registry import Context, Outcome, Spec
from redis_ha.cli.names import command
from redis_ha.clock import clock_line, mmss
from redis_ha.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STOPPED,
    HAError,
)
from redis_ha.inventory import Inventory
from redis_ha.lock import ClusterLock, LockHeld
from redis_ha.plan import Plan
from redis_ha.playbook import CheckRef, Playbook, PlayStep
from redis_ha.state import RunState
from redis_ha.view import View

VERIFY_INTERVAL = 0.25
TIMEOUT_PARAM_SLACK_S = 60.0  # beyond an operator-chosen `timeout: $name`
REPLAN_AFTER_S = 2.0  # an operator who thought longer than this is shown a plan from a new view


class RunnerError(HAError):
    """The run cannot start (no terminal, bad --resume, missing parameter)."""


class StepFailed(Exception):
    """A step did not do what it should; carries the message for screen and journal."""

    def __init__(self, message: str, result: str = "failed") -> None:
        super().__init__(message)
        self.result = result


@dataclass
class _Done:
    step: PlayStep
    state: RunState


@dataclass
class Runner:
    pb: Playbook
    inv: Inventory
    params: dict[str, Any]
    dry_run: bool = False
    yes: bool = False
    resume: str | None = None
    target_name: str | None = None
    ask: bool = field(default_factory=ui.interactive)
    ctx: Context = field(init=False)
    jr: journalmod.Journal = field(init=False)
    started: float = field(default_factory=time.monotonic)
    done: list[_Done] = field(default_factory=list)
    skip_ids: set[str] = field(default_factory=set)
    output: list[str] = field(default_factory=list)
    views_taken: int = 0
    _dry_refusals: list[str] = field(default_factory=list)

    # --- helpers ------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        self.output.append(msg)
        ui.console.print(f"    {msg}", soft_wrap=True)

    def take_view(self) -> View:
        """One gathering of facts: the view a guard round, a plan or a verify poll judges."""
        self.views_taken += 1
        return viewmod.take(self.inv, dry_run=self.dry_run)

    def resolve(self, args: dict[str, Any], spec: Spec, where: str) -> dict[str, Any]:
        """`$name` -> the procedure state `name` if it is a state key, else the operator's
        `--name`; an unset input for an argument with a default leaves the default."""
        out = {}
        for k, v in args.items():
            if isinstance(v, str) and v.startswith("$"):
                name = v[1:]
                if statemod.is_state(name):
                    found = self.ctx.state.get(name)
                    if found is None:
                        if spec.optional(k):
                            continue
                        raise RunnerError(f"{where} needs {v}, which no earlier step recorded")
                    v = found
                else:
                    if self.params.get(name) is None:
                        if spec.optional(k):
                            continue
                        opt = name.replace("_", "-")
                        raise RunnerError(f"{where} needs {v}: pass --{opt}")
                    v = self.params[name]
            out[k] = v
        return out

    def run_check(self, kind: str, step: PlayStep, ref: CheckRef, view: View) -> Outcome:
        spec = registry.CHECKS[ref.name]
        try:
            args = self.resolve(ref.args, spec, f"{kind} {ref.name} of step {step.id!r}")
            out = bounded.call(spec.fn, ref.timeout, view, **args)
        except HAError as e:
            out = Outcome(False, str(e))
        except TimeoutError:
            out = Outcome(False, f"no answer within {ref.timeout:g} s")
        return out

    def make_plan(self, name: str, args: dict[str, Any], view: View, where: str) -> Plan:
        """The plan of action `name` from `view`: the one function both dry run and run call."""
        spec = registry.ACTIONS[name]
        resolved = self.resolve(args, spec, where)
        plan = spec.fn(view, **resolved)
        if not isinstance(plan, Plan):
            raise TypeError(f"{name}: plan function returned {type(plan).__name__}, not a Plan")
        bad = statemod.unknown(plan.record)
        if bad:
            raise TypeError(f"{name}: plan records undeclared state {bad} (add to RunState)")
        return plan

    def show_plan(self, step: PlayStep, plan: Plan, *, undo: bool = False) -> None:
        confirm = "asks first" if step.confirm and not undo else "no prompt"
        lines = plan.lines()
        head = "would" if self.dry_run else "plan"
        ui.console.print(
            f"  [cyan]{head}:[/] {lines[0]}" + (f"  [dim]({confirm})[/]" if not undo else ""),
            soft_wrap=True,
            markup=True,
        )
        for ln in lines[1:]:
            ui.console.print(f"        {ln}", soft_wrap=True, markup=False)
        self.jr.write(
            "plan",
            step=step.id,
            action=plan.action,
            undo=undo,
            dry_run=self.dry_run,
            would="; ".join(lines),
            plan=plan.to_dict(),
        )

    def clock(self, step_s: float, step: PlayStep) -> str:
        total = time.monotonic() - self.started
        return clock_line(step_s, step.expected_s, total, self.pb.budget_s)

    # --- main ---------------------------------------------------------------------------------
    def run(self) -> int:
        failpoint.refuse_unless_lab(self.inv.lab)
        needs_answers = any(s.confirm for s in self.pb.steps) or self.pb.changes
        if not (self.dry_run or self.yes or self.ask) and needs_answers:
            raise RunnerError(
                f"{self.pb.name} asks for confirmations and there is no terminal to ask on: "
                "run it in a terminal, pass --yes to answer yes to every prompt, "
                "or --dry-run to see the plan"
            )
        self.ctx = Context(
            inv=self.inv,
            log=self.log,
            yes=self.yes,
            budget_s=self.pb.budget_s,
            viewer=self.take_view,
        )
        resumed = self._load_resume() if self.resume else None
        # Facts first: a wrong password or a missing variable fails here, before any journal.
        view = self.take_view()
        _refuse_if_no_access(view.facts)
        if resumed:
            self.jr = journalmod.Journal(resumed, self.inv.secrets())
        else:
            self.jr = journalmod.Journal.create(self.pb.name, self.inv.secrets())
            self.ctx.started_at = time.time()
        self.ctx.run_id, self.ctx.journal = self.jr.run_id, self.jr
        self._header(view.health)
        meta = {
            **journalmod.whoami(),
            "procedure": self.pb.name,
            "title": self.pb.title,
            "playbook": str(self.pb.path),
            "runbook": str(self.pb.runbook_path),
            "inventory": str(self.inv.path),
            "inventory_name": self.inv.name,
            "params": self.params,
            "inputs": self.pb.inputs(),
            "dry_run": self.dry_run,
            "yes": self.yes,
            "primary": view.health.primary,
            "budget_s": self.pb.budget_s,
            "facts": healthmod.status_dict(self.inv, view.facts, view.health),
        }
        if resumed:
            first = next((s.id for s in self.pb.steps if s.id not in self.skip_ids), None)
            self.jr.write("resume", **meta, from_step=first, state=self.ctx.state)
        else:
            self.jr.write("start", **meta)

        lock: ClusterLock | None = None
        code, result, message = EXIT_FAILED, "failed", ""
        try:
            with bounded.sigterm_as_interrupt():
                if self.pb.changes and not self.dry_run:
                    self._confirm_target()
                    self._check_permissions(view)
                    lock = ClusterLock(self.inv, self.pb.name, run_id=self.jr.run_id)
                    lock.acquire()
                    msg = f"lock taken ({lock.mode})"
                    if lock.warning:
                        ui.console.print(f"[yellow]warning:[/] {lock.warning}")
                        msg += f": {lock.warning}"
                    self.jr.write("lock", mode=lock.mode, message=msg)
                code, result, message = self._steps()
        except KeyboardInterrupt as e:
            code, result = EXIT_INTERRUPTED, "interrupted"
            message = (
                f"interrupted; continue with: --resume {self.jr.run_id} "
                "(guards are checked again first)"
            )
            worker = e.note if isinstance(e, bounded.Interrupted) else None
            self.jr.write("interrupted", message=message, step_after=worker, state=self.ctx.state)
        except HAError as e:
            code, message = e.code or 1, str(e)
            result = "locked" if isinstance(e, LockHeld) else "error"
        finally:
            if lock is not None:
                lock.release()
            self._finish(code, result, message)
        return code

    def _confirm_target(self) -> None:
        """A cluster that is not a lab is named before its first change (redis_ha.target)."""
        try:
            answer = targetmod.confirm(self.inv, self.target_name, yes=self.yes, ask=self.ask)
        except HAError as e:
            self.jr.write("answer", step=None, answer="target", refused=str(e))
            raise
        if answer:
            self.jr.write("answer", step=None, answer="target", **answer)

    def _check_permissions(self, view: View) -> None:
        """Every command the steps' plans (made now, as the dry run makes them) would send is
        put to ACL DRYRUN first: a user who may not run one is refused before any change."""
        saved, plans = self.ctx.state, []
        self.ctx.state = RunState(**saved)  # type: ignore[typeddict-item]
        try:
            for step in self.pb.steps:
                if step.id in self.skip_ids or not step.action:
                    continue
                try:
                    plan = self.make_plan(step.action, step.args, view, f"step {step.id!r}")
                except HAError:
                    continue  # the step's own guard or plan says why, in its turn
                statemod.merge(self.ctx.state, plan.record)
                plans.append(plan)
        finally:
            self.ctx.state = saved
        wanted = aclmod.needed(plans)
        if view.health.primary:  # the lock's key lives on the primary
            lockcmds = lockmod.commands(self.inv)
            wanted[view.health.primary] = lockcmds + wanted.get(view.health.primary, [])
        bad, unknown = aclmod.refusals(self.inv, wanted)
        self.jr.write("permissions", refused=bad, unchecked=unknown)
        for u in unknown:
            ui.console.print(f"[yellow]warning:[/] permissions not checked in advance: {u}")
        if bad:
            raise RunnerError(aclmod.refusal_line(self.inv, bad), code=EXIT_REFUSED)

    def _load_resume(self) -> Any:
        """The journal to continue; restores its state, parameters, clock and finished steps."""
        assert self.resume is not None
        r = resumemod.load(self.resume, self.pb, self.params)
        self.ctx.state = r.state
        self.params = r.params
        self.started = resumemod.clock_start(r.started_wall)
        self.ctx.started_at = r.started_wall
        self.skip_ids = set(r.skip_ids)
        self.done = [_Done(s, st) for s, st in r.done]
        return r.path

    def _header(self, health: healthmod.Health) -> None:
        rb = self.pb.runbook
        mode = " [bold cyan](DRY RUN: nothing will be changed)[/]" if self.dry_run else ""
        ui.console.rule(f"[bold]{rb.title}[/]{mode}", align="left")
        ui.console.print(f"  procedure: {self.pb.name}   run: {self.jr.run_id}")
        ui.console.print(f"  target:    {self.inv.name} ({self.inv.path})")
        style = ui.LEVEL_STYLE.get(health.level, "")
        ui.console.print(
            f"  primary:   {health.primary or 'none'}   cluster: [{style}]{health.level}[/]"
        )
        ui.console.print(f"  operator:  {journalmod.operator()}")
        ui.console.print(f"  use when:  {rb.meta.get('when')}")
        exp = rb.meta.get("duration")
        budget = f"   budget: {mmss(self.pb.budget_s)}" if self.pb.budget_s else ""
        ui.console.print(f"  expected duration: {exp}{budget}")
        for p in health.problems:
            ui.console.print(f"  [yellow]![/] {p}")
        if self.skip_ids:
            ui.console.print(
                f"  [bold]resuming[/]: steps already done: {', '.join(sorted(self.skip_ids))}"
            )

    # --- steps --------------------------------------------------------------------------------
    def _steps(self) -> tuple[int, str, str]:
        total = len(self.pb.steps)
        changed = False  # in a dry run, guards after a changing step are only indicative
        for i, step in enumerate(self.pb.steps, 1):
            rstep = self.pb.runbook.step(step.id)
            title = rstep.title if rstep else step.id
            if step.id in self.skip_ids:
                ui.console.print(f"[dim]Step {i}/{total}: {title} — done in the earlier run[/]")
                continue
            ui.step_header(i, total, title, step.id)
            if rstep and not self.dry_run:
                ui.markdown(rstep.text)
            self.output = []
            t0 = time.monotonic()
            self.jr.write("step-start", step=step.id, index=i, title=title)
            failpoint.enter(step.id)
            try:
                if self.dry_run:
                    deferred = self._dry_step(step, indicative=changed)
                    changed = changed or step.changes or deferred
                    continue
                plan = self._guards_and_plan(step)
                asked = time.monotonic()
                answer = self._confirm(step, title)
                waited = time.monotonic() - asked
                t0 += waited  # the operator's thinking time is not the step's
                if answer == "yes" and plan is not None and waited > REPLAN_AFTER_S:
                    plan, answer = self._replan(step, title, plan)
                if answer == "skip":
                    self._end_step(step, t0, "skipped")
                    continue
                if answer in ("no", "quit"):
                    self._end_step(step, t0, "declined")
                    if answer == "no":
                        self._undo(f"you stopped at step {step.id!r}")
                        return EXIT_STOPPED, "stopped", f"operator stopped at step {step.id!r}"
                    return (
                        EXIT_STOPPED,
                        "stopped",
                        f"operator quit at step {step.id!r}; continue with --resume "
                        f"{self.jr.run_id}",
                    )
                if plan is not None:
                    try:
                        self._apply(step, plan)
                    except bounded.Interrupted as stopped:
                        self._interrupted_in(step, t0, stopped)
                        raise
                self._verify(step)
            except (StepFailed, RunnerError) as err:
                e = err if isinstance(err, StepFailed) else StepFailed(str(err))
                self._end_step(step, t0, e.result, error=str(e))
                ui.console.print(f"  [bold red]{e.result.upper()}[/]: {e}")
                self._undo(f"step {step.id!r} {e.result}")
                code = EXIT_REFUSED if e.result == "refused" else EXIT_FAILED
                return code, e.result, f"step {step.id!r}: {e}"
            self._end_step(step, t0, "ok")
            self.done.append(_Done(step, RunState(**self.ctx.state)))
        if self.dry_run:
            refused = self._dry_refusals
            if refused:
                return EXIT_REFUSED, "dry-run", "would be refused: " + "; ".join(refused)
            return EXIT_OK, "dry-run", "plan shown, nothing changed"
        return EXIT_OK, "completed", f"{self.pb.name} completed"

    def _check_guards(
        self, step: PlayStep, view: View, note: str = ""
    ) -> list[tuple[CheckRef, Outcome]]:
        """Evaluate, journal and show every guard of `step` on one view; the ones that failed."""
        failed = []
        for ref in step.guard:
            out = self.run_check("guard", step, ref, view)
            self.jr.write(
                "guard", step=step.id, check=ref.name, ok=out.ok, message=out.message, data=out.data
            )
            ui.check_line("guard", out.ok, ref.name, out.message + ("" if out.ok else note))
            if not out.ok:
                failed.append((ref, out))
        return failed

    def _guards_and_plan(self, step: PlayStep) -> Plan | None:
        """One view: the guards judge it, and the action plans from it (shown and journaled)."""
        view = self.take_view() if step.guard or step.action else None
        if view is None:
            return None
        failed = self._check_guards(step, view)
        if failed:
            why = "; ".join(f"{ref.name}: {out.message}" for ref, out in failed)
            raise StepFailed("guard refused — " + why, result="refused")
        if not step.action:
            return None
        try:
            plan = self.make_plan(step.action, step.args, view, f"step {step.id!r}")
        except HAError as e:
            raise StepFailed(f"cannot plan {step.action}: {e}", result="refused") from None
        self.show_plan(step, plan)
        return plan

    def _replan(self, step: PlayStep, title: str, plan: Plan) -> tuple[Plan, str]:
        """The operator took a while: check again on a new view, and ask again if it changed."""
        new = self._guards_and_plan(step)
        assert new is not None
        if new.key() == plan.key():
            return new, "yes"
        ui.console.print("  [yellow]the cluster changed while you decided: the plan is now[/]")
        return new, self._confirm(step, title, again=True)

    def _dry_step(self, step: PlayStep, *, indicative: bool) -> bool:
        """Show the step's guards and plan; True when its decision waits for the run (what
        follows is then indicative too)."""
        note = " (now; earlier steps may change this)" if indicative else ""
        deferred = False
        view = self.take_view()
        failed = self._check_guards(step, view, note)
        if not indicative:
            self._dry_refusals += [f"{step.id}: {out.message}" for _, out in failed]
        if step.action:
            try:
                plan = self.make_plan(step.action, step.args, view, f"step {step.id!r}")
            except HAError as e:
                msg = f"{step.action}: {e}"
                ui.console.print(f"  [cyan]would:[/] {msg}", soft_wrap=True)
                self.jr.write(
                    "plan", step=step.id, action=step.action, dry_run=True, would=msg, error=str(e)
                )
                if not indicative:
                    self._dry_refusals.append(f"{step.id}: {e}")
            else:
                self.show_plan(step, plan)
                statemod.merge(self.ctx.state, plan.record)
                deferred = plan.deferred
        for ref in step.verify:
            ui.console.print(f"  [dim]then waits up to {ref.timeout:g} s for {ref.name}[/]")
        return deferred

    def _confirm(self, step: PlayStep, title: str, *, again: bool = False) -> str:
        if not step.confirm:
            return "yes"
        if self.yes:
            self.jr.write("answer", step=step.id, answer="yes", auto=True)
            return "yes"
        if not self.ask:
            raise RunnerError(f"step {step.id!r} needs a confirmation and there is no terminal")
        what = f" ({step.action})" if step.action else ""
        verb = "Run the new plan of step" if again else "Run step"
        answer = ui.ask_step(
            f"{verb} '{title}'{what}?", skippable=step.skippable, default_no=step.changes
        )
        self.jr.write("answer", step=step.id, answer=answer, auto=False)
        return answer

    def step_timeout(self, step: PlayStep) -> float:
        """The step's bound; `timeout: $name` is the operator's value plus a minute of slack,
        so the action's own deadline (which says more) fires before the runner's."""
        if not step.timeout_param:
            return step.timeout
        name = step.timeout_param
        raw: Any = self.ctx.state.get(name) if statemod.is_state(name) else self.params.get(name)
        if raw is None:
            raise RunnerError(f"step {step.id!r} needs ${name}: pass --{name.replace('_', '-')}")
        try:
            return float(raw) + TIMEOUT_PARAM_SLACK_S
        except (TypeError, ValueError):
            raise RunnerError(
                f"step {step.id!r}: --{name.replace('_', '-')} must be a number "
                f"of seconds, got {raw!r}"
            ) from None

    def _apply(self, step: PlayStep, plan: Plan) -> None:
        """Carry out `plan`: its recorded state first (so an undo knows it even if apply dies)."""
        assert step.action is not None
        spec = registry.ACTIONS[step.action]
        timeout = self.step_timeout(step)
        statemod.merge(self.ctx.state, plan.record)
        self.jr.write("apply", step=step.id, action=step.action, state=self.ctx.state)
        ui.console.print(f"  [cyan]→[/] {step.action}", soft_wrap=True)
        try:
            out = self._call_apply(spec, plan, timeout)
        except TimeoutError:
            raise StepFailed(
                f"{step.action} did not finish within {timeout:g} s", "timeout"
            ) from None
        except HAError as e:
            raise StepFailed(str(e)) from None
        except Exception as e:  # a bug in an action: journal it, fail the step, offer undo
            tb = traceback.format_exc(limit=5)
            self.output.append(tb)
            raise StepFailed(f"unexpected error in {step.action}: {type(e).__name__}: {e}") from e
        if out.message:
            self.output.append(out.message)
        if not out.ok:
            raise StepFailed(out.message or f"{step.action} reported failure")
        ui.console.print(f"  [green]✓[/] {out.message or 'done'}", soft_wrap=True)

    def _interrupted_in(self, step: PlayStep, t0: float, e: bounded.Interrupted) -> None:
        """Ctrl-C in a step's apply: journal what its worker did after (bounded.call waited for
        it), so the journal stays true; a step that finished is done, and a resume skips it."""
        ui.console.print(f"  [yellow]interrupted:[/] {e.note}", soft_wrap=True)
        if e.outcome is not None and e.outcome.message:
            self.output.append(e.outcome.message)
        finished = e.outcome is not None and e.outcome.ok
        self._end_step(step, t0, "ok" if finished else "interrupted", error=e.note)

    def _call_apply(self, spec: Spec, plan: Plan, timeout: float) -> Outcome:
        assert spec.apply is not None
        return bounded.call(spec.apply, timeout, self.ctx, plan)

    def _verify(self, step: PlayStep) -> None:
        """Poll every verification on one fresh view per round until each passes or times out."""
        if not step.verify:
            return
        t0 = time.monotonic()
        pending = list(step.verify)
        while pending:
            view = self.take_view()
            for ref in list(pending):
                out = self.run_check("verify", step, ref, view)
                waited = time.monotonic() - t0
                if not out.ok and waited < ref.timeout:
                    continue
                pending.remove(ref)
                self.jr.write(
                    "verify",
                    step=step.id,
                    check=ref.name,
                    ok=out.ok,
                    message=out.message,
                    waited_s=round(waited, 3),
                )
                ui.check_line("verify", out.ok, ref.name, f"{out.message} ({waited:.1f} s)")
                if not out.ok:
                    raise StepFailed(
                        f"{ref.name} still not true after {ref.timeout:g} s: {out.message}",
                        "failed",
                    )
            if pending:
                time.sleep(VERIFY_INTERVAL)

    def _end_step(self, step: PlayStep, t0: float, result: str, error: str | None = None) -> None:
        dur = time.monotonic() - t0
        over = bool(step.expected_s and dur > step.expected_s)
        elapsed = time.monotonic() - self.started
        over_budget = bool(self.pb.budget_s and elapsed > self.pb.budget_s)
        self.jr.write(
            "step-end",
            step=step.id,
            result=result,
            duration_s=round(dur, 3),
            expected_s=step.expected_s,
            over_expected=over,
            output=self.output,
            error=error,
            state=self.ctx.state,
            elapsed_s=round(elapsed, 3),
            over_budget=over_budget,
        )
        ui.console.print(self.clock(dur, step))
        if over:
            self.jr.write(
                "note", step=step.id, message=f"took {dur:.1f} s, expected {step.expected_s:g} s"
            )

    def _undo(self, why: str) -> None:
        todo = [d for d in reversed(self.done) if d.step.undo is not None]
        if not todo:
            return
        names = ", ".join(d.step.id for d in todo)
        if self.yes:
            go = True
            self.jr.write("answer", step=None, answer="undo", auto=True)
        elif self.ask:
            go = ui.ask_yes_no(
                f"{why}. Undo the completed steps in reverse order ({names})?", default=True
            )
            self.jr.write("answer", step=None, answer="undo" if go else "keep", auto=False)
        else:
            go = False
        if not go:
            ui.console.print(f"[yellow]not undoing[/] {names}")
            return
        ui.console.rule("[bold]Undo[/]", align="left")
        for d in todo:
            assert d.step.undo is not None
            spec = registry.ACTIONS[d.step.undo.name]
            self.ctx.state = RunState(**{**d.state, **self.ctx.state})  # type: ignore[typeddict-item]
            try:
                view = self.take_view()
                plan = self.make_plan(spec.name, d.step.undo.args, view, f"undo of {d.step.id!r}")
                self.show_plan(d.step, plan, undo=True)
                statemod.merge(self.ctx.state, plan.record)
                failpoint.enter(f"undo:{d.step.id}")
                out = self._call_apply(spec, plan, self.step_timeout(d.step))
                res, msg = ("ok" if out.ok else "failed"), out.message
            except (HAError, TimeoutError) as e:
                res, msg = "failed", str(e) or "timed out"
            except Exception as e:
                res, msg = "failed", f"unexpected error: {type(e).__name__}: {e}"
            self.jr.write("undo", step=d.step.id, action=spec.name, result=res, message=msg)
            mark = "[green]✓[/]" if res == "ok" else "[red]✗[/]"
            ui.console.print(f"  {mark} undo {d.step.id} ({spec.name}): {msg}", soft_wrap=True)

    def _finish(self, code: int, result: str, message: str) -> None:
        after: dict[str, Any] = {}
        try:
            v = self.take_view()
            after = {
                "facts_after": healthmod.status_dict(self.inv, v.facts, v.health),
                "primary_after": v.health.primary,
                "problems_after": v.health.problems,
            }
        except HAError as e:
            after = {"facts_after_error": str(e)}
        total = time.monotonic() - self.started
        self.jr.write(
            "end",
            result=result,
            exit_code=code,
            message=message,
            duration_s=round(total, 3),
            views_taken=self.views_taken,
            **after,
        )
        style = "bold green" if code == 0 else "bold red"
        ui.console.rule(align="left")
        ui.console.print(f"[{style}]{result.upper()}[/] {message}  ({mmss(total)})", soft_wrap=True)
        ui.console.print(
            f"  journal: {self.jr.path}   ({command(f'journal.show --run {self.jr.run_id}')})"
        )
        if result in ("error", "locked"):
            ui.err_console.print(f"error: {message}", soft_wrap=True, markup=False)


def _refuse_if_no_access(facts: factsmod.ClusterFacts) -> None:
    """Every endpoint refusing our password is one clear line, not a run of failed steps."""
    refused = facts.denied()
    if refused and len(refused) == len(facts.nodes) + len(facts.sentinels):
        raise RunnerError(f"every node and Sentinel refused us: {refused[0].error}")


def run_playbook(
    name: str,
    inv: Inventory,
    *,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    yes: bool = False,
    resume: str | None = None,
    target_name: str | None = None,
) -> int:
    """Run playbooks/<name>.yaml (or a playbook path) against `inv`; returns the exit code."""
    pb = playbookmod.load(name)  # loads the registry too
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    return Runner(
        pb, inv, clean, dry_run=dry_run, yes=yes, resume=resume, target_name=target_name
    ).run()
