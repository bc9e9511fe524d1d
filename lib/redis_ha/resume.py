"""Continue an interrupted run from its journal: its state, parameters, clock and finished steps.

A run stopped by Ctrl-C, a lost terminal or SIGTERM leaves a journal; `--resume RUN` reads it
here and the runner starts again at the first step that did not finish (its guards are checked
again first, on a fresh view).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis_ha import journal as journalmod
from redis_ha.errors import HAError
from redis_ha.playbook import Playbook, PlayStep
from redis_ha.state import RunState


class ResumeError(HAError):
    """The journal named by --resume cannot be continued."""


@dataclass
class Resumed:
    path: Path
    state: RunState
    params: dict[str, Any]
    started_wall: float  # when the original run started (time.time())
    skip_ids: set[str] = field(default_factory=set)
    done: list[tuple[PlayStep, RunState]] = field(default_factory=list)


def load(run: str, pb: Playbook, params: dict[str, Any]) -> Resumed:
    """The run to continue; a run of another procedure, a dry run or a finished one refuses."""
    path = journalmod.find(run, pb.name)
    recs = journalmod.read(path)
    start = next((r for r in recs if r["event"] == "start"), None)
    if start is None:
        raise ResumeError(f"{path.name} has no start record: cannot resume it")
    if start.get("procedure") != pb.name:
        raise ResumeError(f"run {path.stem} is a {start.get('procedure')} run, not {pb.name}")
    if start.get("dry_run"):
        raise ResumeError(f"run {path.stem} was a dry run: nothing to resume")
    ends = [r for r in recs if r["event"] == "end"]
    if ends and ends[-1].get("result") == "completed":
        raise ResumeError(f"run {path.stem} already completed: nothing to resume")
    done: dict[str, dict[str, Any]] = {}
    state: RunState = RunState()
    for r in recs:
        if r["event"] == "step-end" and r.get("result") in ("ok", "skipped"):
            done[r["step"]] = r
        if r["event"] == "undo" and r.get("result") == "ok":
            done.pop(str(r.get("step")), None)
        if r.get("state") is not None and r["event"] in ("step-end", "resume", "apply"):
            state = RunState(**r["state"])  # type: ignore[typeddict-item]
    merged = {**start.get("params", {}), **{k: v for k, v in params.items() if v}}
    out = Resumed(path, state, merged, float(start["ts"]))
    for s in pb.steps:
        if s.id not in done:
            break
        out.skip_ids.add(s.id)
        if done[s.id].get("result") == "ok":
            out.done.append((s, RunState(**(done[s.id].get("state") or {}))))  # type: ignore[typeddict-item]
    if len(out.skip_ids) == len(pb.steps):
        raise ResumeError(f"run {path.stem}: every step is done already")
    return out


def clock_start(started_wall: float) -> float:
    """The monotonic start of a resumed run: the clock (and the budget) counts from the
    original start, not from the resume."""
    return time.monotonic() - max(0.0, time.time() - started_wall)
