"""The registry of what playbook steps may do: actions (plan, then apply) and checks (predicates).

A playbook names actions and checks by string; `runbooks.check` validates every name and every
argument against the signatures registered here, before anything runs.

Contract for authors:
- A check is `fn(view, **args) -> Outcome`, pure over one `View` (facts of one round): `ok`
  False means "not (yet) true". Guards are checks evaluated before a step; verifications are
  checks polled after it. Checks never change the cluster and never gather facts themselves.
- An action is a pair: `plan(view, **args) -> Plan` decides from the view what it will do (the
  operations, or a no-op with its reason, and the state it will record) and `apply(ctx, plan)`
  does exactly that. `--dry-run` prints the plan; the run journals the plan it applied. A
  time-critical loop lives in `apply`, with every parameter taken from `plan.params`.
- Every input arrives as an argument: operator options reach a step only as `$name` arguments in
  the playbook (so `runbooks.check` lists them); a step's results go into `ctx.state`
  (`redis_ha.state.RunState`, journaled and restored by `--resume`).
- Expected failures raise `redis_ha.errors.HAError` (or return Outcome(ok=False)); the runner
  turns them into a journaled, readable failure.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from redis_ha import journal as journalmod
from redis_ha import view as viewmod
from redis_ha.errors import HAError
from redis_ha.inventory import Inventory
from redis_ha.plan import Plan
from redis_ha.state import RunState
from redis_ha.view import View


@dataclass
class Outcome:
    """What an action or check returns: success, one line for the screen, data for the journal."""

    ok: bool = True
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What `apply` may use: the target, this run's identity, journal and clock, and its state."""

    inv: Inventory
    state: RunState = field(default_factory=lambda: RunState())
    log: Callable[[str], None] = print
    yes: bool = False
    run_id: str = ""
    journal: journalmod.Journal | None = None
    budget_s: float | None = None
    started_at: float = 0.0  # wall-clock start of the run (a resumed run keeps the original)
    viewer: Callable[[], View] | None = None  # the runner's (it counts the views it takes)

    def view(self) -> View:
        """A fresh look, for an apply that must see the cluster as it is now."""
        return self.viewer() if self.viewer else viewmod.take(self.inv)


CheckFn = Callable[..., Outcome]
PlanFn = Callable[..., Plan]
ApplyFn = Callable[[Context, Plan], Outcome]


@dataclass
class Spec:
    name: str
    kind: str  # "action" | "check"
    fn: Callable[..., Any]  # the check, or the action's plan function
    apply: ApplyFn | None = None
    changes: bool = True  # actions that change the cluster default to confirm: true
    doc: str = ""

    def params(self) -> dict[str, inspect.Parameter]:
        """The arguments a playbook may pass (everything after the view)."""
        ps = list(inspect.signature(self.fn).parameters.values())[1:]
        return {p.name: p for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def check_args(self, args: dict[str, Any], late: Collection[str] = ()) -> list[str]:
        """Problems with `args` for this action: unknown, missing, or of the wrong type.

        `late` names arguments whose values are only known at run time (`$name`): they must
        exist, but their type is not checked.
        """
        problems = []
        params = self.params()
        for k, v in args.items():
            if k not in params:
                known = ", ".join(params) or "none"
                problems.append(f"{self.name}: unknown argument {k!r} (accepts: {known})")
                continue
            if k in late:
                continue
            want = params[k].annotation
            if isinstance(want, str):
                want = {"int": int, "float": float, "str": str, "bool": bool}.get(want, want)
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                continue
            if isinstance(want, type) and not isinstance(v, want):
                problems.append(f"{self.name}: argument {k!r} must be {want.__name__}, got {v!r}")
            elif isinstance(want, type) and want is int and isinstance(v, bool):
                problems.append(f"{self.name}: argument {k!r} must be int, got {v!r}")
        for k, p in params.items():
            if p.default is p.empty and k not in args:
                problems.append(f"{self.name}: missing required argument {k!r}")
        return problems

    def optional(self, arg: str) -> bool:
        """True when `arg` has a default: an operator input left unset then means the default."""
        p = self.params().get(arg)
        return p is not None and p.default is not p.empty


ACTIONS: dict[str, Spec] = {}
CHECKS: dict[str, Spec] = {}


def action(name: str, *, plan: PlanFn, changes: bool = True) -> Callable[[ApplyFn], ApplyFn]:
    """Register `apply(ctx, plan)` with its `plan(view, **args)` under a dotted name."""

    def deco(fn: ApplyFn) -> ApplyFn:
        if name in ACTIONS:
            raise ValueError(f"action {name!r} registered twice")
        doc = (fn.__doc__ or plan.__doc__ or "").strip()
        ACTIONS[name] = Spec(name, "action", plan, fn, changes, doc)
        return fn

    return deco


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a read-only predicate `fn(view, **args)` usable as a guard or a verification.

    A check may raise an HAError (e.g. `view.primary()` when no primary is usable): whoever
    calls it gets a failed Outcome carrying that message, so no check repeats the try.
    """

    def deco(fn: CheckFn) -> CheckFn:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")

        @functools.wraps(fn)
        def judged(view: View, *pos: Any, **args: Any) -> Outcome:
            try:
                return fn(view, *pos, **args)
            except HAError as e:
                return Outcome(False, str(e))

        CHECKS[name] = Spec(name, "check", judged, None, False, (fn.__doc__ or "").strip())
        return judged

    return deco


def load_all() -> None:
    """Import every module that registers actions and checks (idempotent)."""
    import importlib
    import pkgutil

    import redis_ha.actions as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name != "registry":
            importlib.import_module(f"redis_ha.actions.{m.name}")
