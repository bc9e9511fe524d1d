"""Load a playbook (the mechanics of a runbook) and validate it against its runbook and registry.

Validation happens before anything runs and reports every problem with file and line: a step
documented but not playable (or the reverse), a different order, an unknown action or check, an
argument the Python signature does not accept, a malformed field. `runbooks.check` is this
module applied to every pair in the repository.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redis_ha import paths
from redis_ha import runbook as runbookmod
from redis_ha import state as statemod
from redis_ha.actions import registry
from redis_ha.errors import HAError
from redis_ha.runbook import Problem, Runbook

TOP_FIELDS = {"runbook", "changes", "budget_s", "steps"}
STEP_FIELDS = {
    "id",
    "action",
    "args",
    "guard",
    "verify",
    "undo",
    "confirm",
    "skippable",
    "timeout",
    "expected_s",
}
CHECK_FIELDS = {"check", "args", "timeout"}
UNDO_FIELDS = {"action", "args"}
DEFAULT_ACTION_TIMEOUT = 60.0
DEFAULT_VERIFY_TIMEOUT = 10.0


class PlaybookError(HAError):
    """A playbook or its runbook is invalid: nothing runs."""


@dataclass
class CheckRef:
    """A guard or verification: a registered check with arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_VERIFY_TIMEOUT


@dataclass
class ActionRef:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlayStep:
    id: str
    line: int
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    guard: list[CheckRef] = field(default_factory=list)
    verify: list[CheckRef] = field(default_factory=list)
    undo: ActionRef | None = None
    confirm: bool = False
    skippable: bool = False
    timeout: float = DEFAULT_ACTION_TIMEOUT
    # `timeout: $name`: the operator chose the bound (e.g. --sync-timeout); resolved at run time.
    timeout_param: str | None = None
    expected_s: float | None = None

    @property
    def changes(self) -> bool:
        """True when the step's action changes the cluster."""
        if not self.action:
            return False
        spec = registry.ACTIONS.get(self.action)
        return spec.changes if spec else True


@dataclass
class Playbook:
    path: Path
    runbook_path: Path
    changes: bool
    budget_s: float | None
    steps: list[PlayStep]
    runbook: Runbook

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def title(self) -> str:
        return self.runbook.title

    def inputs(self) -> list[str]:
        """Every `$name` that is not procedure state: the options an operator passes (`--name`)."""
        names: list[str] = []
        for s in self.steps:
            refs = [s.args, *(c.args for c in (*s.guard, *s.verify))]
            if s.undo:
                refs.append(s.undo.args)
            vals: list[Any] = [v for a in refs for v in a.values()]
            if s.timeout_param:
                vals.append(f"${s.timeout_param}")
            for v in vals:
                if isinstance(v, str) and v.startswith("$") and not statemod.is_state(v[1:]):
                    names.append(v[1:])
        return list(dict.fromkeys(names))


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings remember the line of each key (for messages)."""


class LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    d = LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    d.line = node.start_mark.line + 1
    d.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return d


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def playbook_path(name_or_path: str | os.PathLike[str]) -> Path:
    """`failover-manual` -> the shipped playbooks/failover-manual.yaml; a path is taken as it is.

    A relative path that does not exist is looked up beside the shipped playbooks/ (so
    `playbooks/x.yaml` works from any folder).
    """
    s = str(name_or_path)
    playbooks = paths.shipped("playbooks")
    if s.endswith((".yaml", ".yml")) or os.sep in s:
        p = Path(s)
        return p if p.is_absolute() or p.exists() else playbooks.parent / p
    return playbooks / f"{s}.yaml"


def resolve_runbook(ref: str, playbook_file: Path) -> Path:
    """A playbook's `runbook:` is relative to the folder holding playbooks/ (the repo root)."""
    p = Path(ref)
    if p.is_absolute():
        return p
    base = playbook_file.resolve().parent.parent
    return base / p


def load(name_or_path: str | os.PathLike[str]) -> Playbook:
    """A validated playbook and its runbook, or a PlaybookError listing every problem."""
    path = playbook_path(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in discover()))
        raise PlaybookError(f"no playbook {str(name_or_path)!r} (known: {known or 'none'})")
    pb, problems = validate(path)
    if problems or pb is None:
        lines = "\n  ".join(str(p) for p in problems)
        raise PlaybookError(f"{path.name} is invalid ({len(problems)} problems):\n  {lines}")
    return pb


def validate(path: Path) -> tuple[Playbook | None, list[Problem]]:
    """Parse the playbook at `path` and its runbook; check the pair and the registry."""
    registry.load_all()
    problems: list[Problem] = []

    def bad(line: int | None, msg: str) -> None:
        problems.append(Problem(path, line, msg))

    text, unreadable = runbookmod.read(path, "playbook")
    if text is None:
        return None, unreadable
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        return None, [Problem(path, mark.line + 1 if mark else None, f"invalid YAML: {problem}")]
    if not isinstance(data, LineDict):
        return None, [Problem(path, 1, "a playbook must be a mapping with runbook: and steps:")]
    kl = data.key_lines
    for k in data:
        if k not in TOP_FIELDS:
            bad(kl.get(k), f"unknown field {k!r} (expected: {', '.join(sorted(TOP_FIELDS))})")

    ref = data.get("runbook")
    if not isinstance(ref, str) or not ref:
        bad(kl.get("runbook", 1), "runbook: must name the Markdown file (runbooks/<name>.md)")
        return None, problems
    rb_path = resolve_runbook(ref, path)
    if not rb_path.exists():
        bad(kl.get("runbook"), f"runbook {ref} does not exist")
        return None, problems
    rb, rb_problems = runbookmod.parse(rb_path)
    problems += rb_problems
    declared = rb.meta.get("playbook")
    if declared and resolve_runbook(str(declared), rb_path).resolve() != path.resolve():
        problems.append(
            Problem(rb_path, 1, f"front matter names playbook {declared}, not {path.name}")
        )

    changes_raw = data.get("changes")
    if changes_raw is not None and not isinstance(changes_raw, bool):
        bad(kl.get("changes"), f"changes must be true or false, got {changes_raw!r}")
    budget = data.get("budget_s")
    if budget is not None and (not _number(budget) or budget <= 0):
        bad(kl.get("budget_s"), f"budget_s must be a positive number of seconds, got {budget!r}")
        budget = None

    raw_steps = data.get("steps")
    steps: list[PlayStep] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        bad(kl.get("steps", data.line), "steps: must be a non-empty list")
    else:
        for i, raw in enumerate(raw_steps):
            st = _step(raw, i, path, problems)
            if st is not None:
                steps.append(st)

    problems += pair_problems(rb, steps, path)
    changes = changes_raw if isinstance(changes_raw, bool) else any(s.changes for s in steps)
    pb = Playbook(
        path=path,
        runbook_path=rb_path,
        changes=changes,
        budget_s=float(budget) if budget is not None else None,
        steps=steps,
        runbook=rb,
    )
    return pb, problems


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _step(raw: Any, i: int, path: Path, problems: list[Problem]) -> PlayStep | None:
    if not isinstance(raw, LineDict):
        problems.append(Problem(path, None, f"steps[{i}] must be a mapping with an id"))
        return None
    kl = raw.key_lines
    line = raw.line

    def bad(key: str | None, msg: str) -> None:
        problems.append(Problem(path, kl.get(key or "", line), msg))

    sid = raw.get("id")
    if not isinstance(sid, str) or not runbookmod.ID_RE.match(sid):
        bad("id", f"steps[{i}]: id must be a step id like 'pause-writes', got {sid!r}")
        return None
    where = f"step {sid!r}"
    for k in raw:
        if k not in STEP_FIELDS:
            bad(k, f"{where}: unknown field {k!r} (expected: {', '.join(sorted(STEP_FIELDS))})")
    st = PlayStep(id=sid, line=line)

    action = raw.get("action")
    args = raw.get("args") or {}
    if not isinstance(args, dict):
        bad("args", f"{where}: args must be a mapping, got {args!r}")
        args = {}
    if action is not None:
        if not isinstance(action, str):
            bad("action", f"{where}: action must be a name, got {action!r}")
        elif action not in registry.ACTIONS:
            bad("action", f"{where}: unknown action {action!r}{_suggest(action, registry.ACTIONS)}")
        else:
            st.action = action
            for msg in _arg_problems(registry.ACTIONS[action], args):
                bad("args", f"{where}: {msg}")
    elif args:
        bad("args", f"{where}: args given but no action")
    st.args = dict(args)

    for key in ("guard", "verify"):
        items = raw.get(key) or []
        if not isinstance(items, list):
            items = [items]
        for item in items:
            ref = _check_ref(item, where, key, bad)
            if ref is not None:
                getattr(st, key).append(ref)

    undo = raw.get("undo")
    if undo is not None:
        st.undo = _undo_ref(undo, where, bad)

    confirm = raw.get("confirm")
    if confirm is not None and not isinstance(confirm, bool):
        bad("confirm", f"{where}: confirm must be true or false, got {confirm!r}")
        confirm = None
    st.confirm = confirm if isinstance(confirm, bool) else st.changes
    skippable = raw.get("skippable", False)
    if not isinstance(skippable, bool):
        bad("skippable", f"{where}: skippable must be true or false, got {skippable!r}")
    st.skippable = skippable is True
    for key in ("timeout", "expected_s"):
        v = raw.get(key)
        if v is None:
            continue
        if key == "timeout" and isinstance(v, str) and re.fullmatch(r"\$[a-z_][a-z0-9_]*", v):
            st.timeout_param = v[1:]
            continue
        if not _number(v) or v <= 0:
            bad(key, f"{where}: {key} must be a positive number of seconds, got {v!r}")
        else:
            setattr(st, key, float(v))
    return st


def _suggest(name: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _arg_problems(spec: registry.Spec, args: dict[str, Any]) -> list[str]:
    """Signature problems; `$name` values are resolved at run time so only their names count."""
    late = {k for k, v in args.items() if isinstance(v, str) and v.startswith("$")}
    return spec.check_args(args, late)


def _check_ref(item: Any, where: str, key: str, bad: Any) -> CheckRef | None:
    name: Any
    args: Any
    if isinstance(item, str):
        name, args, timeout = item, {}, DEFAULT_VERIFY_TIMEOUT
    elif isinstance(item, dict):
        for k in item:
            if k not in CHECK_FIELDS:
                bad(key, f"{where}: {key}: unknown field {k!r} (expected: check, args, timeout)")
        name = item.get("check")
        args = item.get("args") or {}
        timeout = item.get("timeout", DEFAULT_VERIFY_TIMEOUT)
        if not isinstance(args, dict):
            bad(key, f"{where}: {key}: args must be a mapping, got {args!r}")
            return None
        if not _number(timeout) or timeout <= 0:
            bad(key, f"{where}: {key}: timeout must be a positive number, got {timeout!r}")
            timeout = DEFAULT_VERIFY_TIMEOUT
    else:
        bad(key, f"{where}: {key} entries are a check name or {{check: name, args: {{...}}}}")
        return None
    if not isinstance(name, str):
        bad(key, f"{where}: {key}: check must be a name, got {name!r}")
        return None
    if name not in registry.CHECKS:
        hint = " (that is an action, not a check)" if name in registry.ACTIONS else ""
        bad(key, f"{where}: unknown check {name!r}{hint or _suggest(name, registry.CHECKS)}")
        return None
    for msg in _arg_problems(registry.CHECKS[name], args):
        bad(key, f"{where}: {key}: {msg}")
    return CheckRef(name=name, args=dict(args), timeout=float(timeout))


def _undo_ref(undo: Any, where: str, bad: Any) -> ActionRef | None:
    name: Any
    args: Any
    if isinstance(undo, str):
        name, args = undo, {}
    elif isinstance(undo, dict):
        for k in undo:
            if k not in UNDO_FIELDS:
                bad("undo", f"{where}: undo: unknown field {k!r} (expected: action, args)")
        name, args = undo.get("action"), undo.get("args") or {}
        if not isinstance(args, dict):
            bad("undo", f"{where}: undo: args must be a mapping")
            return None
    else:
        bad("undo", f"{where}: undo must be an action name or {{action: name, args: {{...}}}}")
        return None
    if not isinstance(name, str) or name not in registry.ACTIONS:
        bad("undo", f"{where}: unknown undo action {name!r}{_suggest(str(name), registry.ACTIONS)}")
        return None
    for msg in _arg_problems(registry.ACTIONS[name], args):
        bad("undo", f"{where}: undo: {msg}")
    return ActionRef(name=name, args=dict(args))


def pair_problems(rb: Runbook, steps: list[PlayStep], pb_path: Path) -> list[Problem]:
    """Each documented step has a playbook step and vice versa, in the same order."""
    out: list[Problem] = []
    doc_ids = [s.id for s in rb.steps]
    play_ids = [s.id for s in steps]
    seen: dict[str, int] = {}
    for s in steps:
        if s.id in seen:
            out.append(
                Problem(pb_path, s.line, f"duplicate step {s.id!r} (also line {seen[s.id]})")
            )
        seen.setdefault(s.id, s.line)
    for r in rb.steps:
        if r.id not in seen:
            out.append(
                Problem(rb.path, r.line, f"step {r.id!r} has no playbook step in {pb_path.name}")
            )
    for s in steps:
        if rb.step(s.id) is None:
            out.append(
                Problem(pb_path, s.line, f"step {s.id!r} is not documented in {rb.path.name}")
            )
    common_doc = [i for i in doc_ids if i in seen]
    common_play = [i for i in dict.fromkeys(play_ids) if i in set(doc_ids)]
    for pos, (d, p) in enumerate(zip(common_doc, common_play, strict=False)):
        if d != p:
            ps = next(x for x in steps if x.id == p)
            doc = rb.step(d)
            out.append(
                Problem(
                    pb_path,
                    ps.line,
                    f"order differs from {rb.path.name}: step {pos + 1} is {p!r} here but "
                    f"{d!r} in the runbook (line {doc.line if doc else '?'})",
                )
            )
            break
    return out


def discover(root: Path | None = None) -> list[Path]:
    """Every playbook in `root`/playbooks (default: the shipped ones)."""
    folder = root / "playbooks" if root else paths.shipped("playbooks")
    return sorted(folder.glob("*.yaml"))


def check_all(root: Path | None = None) -> list[Problem]:
    """`runbooks.check`: every pair in runbooks/ + playbooks/, and runbooks left without a pair."""
    root = root or paths.shipped("playbooks").parent
    problems: list[Problem] = []
    paired: set[Path] = set()
    for p in discover(root):
        pb, probs = validate(p)
        problems += probs
        if pb is not None:
            paired.add(pb.runbook_path.resolve())
    for md in sorted((root / "runbooks").glob("*.md")):
        if md.resolve() in paired or (root / "playbooks" / f"{md.stem}.yaml").exists():
            continue  # paired, or its playbook is broken and already reported
        rb, probs = runbookmod.parse(md)
        if rb.steps or rb.meta.get("playbook"):
            problems += probs
            problems.append(
                Problem(md, 1, "no playbook names this runbook (playbooks/<name>.yaml runbook:)")
            )
    return problems
