"""The registry of what playbook steps may do: actions (side effects) and checks (predicates).

A playbook names actions and checks by string; `runbooks.check` validates every name and every
argument against the function signatures registered here, before anything runs.

Contract for authors of actions and checks:
- An action is `fn(ctx: Context, **args) -> Outcome`. It acts on the cluster and returns what it
  did. Values later steps need (the old primary, the chosen target) go into `ctx.state`, which the
  journal records so that `--resume` can restore it.
- A check is `fn(ctx: Context, **args) -> Outcome`; `ok` False means "not (yet) true". Guards are
  checks evaluated before a step; verifications are checks polled after it until they pass or
  time out. Checks never change the cluster.
- `describe(ctx, **args) -> str` (optional) says what the action would do to which node, from
  facts alone: it is what `--dry-run` prints. Without it the runner prints the name and args.
- Expected failures raise `redis_ha.errors.HAError` (or return Outcome(ok=False)); the runner turns
  them into a journaled, readable failure.
- Operator choices (`--to`, `--node`, `--policy`) arrive in `ctx.params`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from redis_ha import facts as factsmod
from redis_ha import health as healthmod
from redis_ha.inventory import Inventory


@dataclass
class Outcome:
    """What an action or check returns: success, one line for the screen, data for the journal."""

    ok: bool = True
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Everything a step may use. Thin: facts are gathered on demand, fresh each time."""

    inv: Inventory
    params: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    log: Callable[[str], None] = print
    yes: bool = False

    def facts(self, *, detail: bool = True) -> factsmod.ClusterFacts:
        return factsmod.gather(self.inv, detail=detail)

    def health(self) -> tuple[factsmod.ClusterFacts, healthmod.Health]:
        f = self.facts()
        return f, healthmod.assess(self.inv, f)


ActionFn = Callable[..., Outcome]
DescribeFn = Callable[..., str]


@dataclass
class Spec:
    name: str
    fn: ActionFn
    kind: str  # "action" | "check"
    describe: DescribeFn | None = None
    changes: bool = True  # actions that change the cluster default to confirm: true
    doc: str = ""

    def params(self) -> dict[str, inspect.Parameter]:
        """The arguments a playbook may pass (everything after ctx)."""
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


ACTIONS: dict[str, Spec] = {}
CHECKS: dict[str, Spec] = {}


def action(
    name: str, *, describe: DescribeFn | None = None, changes: bool = True
) -> Callable[[ActionFn], ActionFn]:
    """Register an action under a dotted name (`primary.pause_writes`)."""

    def deco(fn: ActionFn) -> ActionFn:
        if name in ACTIONS:
            raise ValueError(f"action {name!r} registered twice")
        ACTIONS[name] = Spec(name, fn, "action", describe, changes, (fn.__doc__ or "").strip())
        return fn

    return deco


def check(name: str, *, describe: DescribeFn | None = None) -> Callable[[ActionFn], ActionFn]:
    """Register a read-only predicate usable as a guard or a verification."""

    def deco(fn: ActionFn) -> ActionFn:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = Spec(name, fn, "check", describe, False, (fn.__doc__ or "").strip())
        return fn

    return deco


def load_all() -> None:
    """Import every module that registers actions and checks (idempotent)."""
    import importlib
    import pkgutil

    import redis_ha.actions as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name != "registry":
            importlib.import_module(f"redis_ha.actions.{m.name}")
