"""Parse a Markdown runbook into its front matter and executable steps.

A runbook is ordinary Markdown that reads well on GitHub. The executable steps are exactly the
level-2 headings carrying an explicit id (`## 3. Pause writes {#pause-writes}`); a step's body is
everything up to the next level-1 or level-2 heading. Headings inside code fences are text.
Problems are collected with file and line so `runbooks.check` can report them all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ID_RE = re.compile(r"^(.*?)\s*\{#([^}]*)\}$")
FENCE_RE = re.compile(r"^\s{0,3}(```+|~~~+)")
FRONT_MATTER_FIELDS = ("title", "when", "duration", "playbook")
REQUIRED_FRONT_MATTER = ("title", "when", "duration")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, pinned to a line for the editor."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{_rel(self.path)}:{self.line}" if self.line else _rel(self.path)
        return f"{where}: {self.message}"


@dataclass
class Step:
    """One executable step as the operator reads it."""

    id: str
    title: str
    text: str
    line: int


@dataclass
class Runbook:
    path: Path
    meta: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    intro: str = ""

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.name)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read(path: Path, what: str) -> tuple[str | None, list[Problem]]:
    """The text of `path`, or None and the one problem that says why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8"), []
    except OSError as e:
        return None, [Problem(path, None, f"cannot read {what} ({e.strerror})")]
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        byte = f"0x{e.object[e.start]:02x}"
        return None, [Problem(path, line, f"cannot read {what}: not UTF-8 (byte {byte})")]


def parse(path: Path) -> tuple[Runbook, list[Problem]]:
    """The runbook at `path` and every problem found in it (unreadable file -> one problem)."""
    text, problems = read(path, "runbook")
    if text is None:
        return Runbook(path=path, meta={}), problems
    return parse_text(text, path)


def parse_text(text: str, path: Path) -> tuple[Runbook, list[Problem]]:
    problems: list[Problem] = []
    rb = Runbook(path=path, meta={})
    lines = text.splitlines()
    start = 0
    front_matter_read = False  # when it is missing or broken, that is the one problem to report
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            problems.append(Problem(path, 1, "front matter is not closed with '---'"))
        else:
            try:
                meta = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                line = mark.line + 2 if mark else 1
                why = getattr(e, "problem", None) or str(e).splitlines()[0]
                problems.append(Problem(path, line, f"invalid front matter YAML: {why}"))
            else:
                if isinstance(meta, dict):
                    rb.meta, front_matter_read = meta, True
                else:
                    problems.append(Problem(path, 2, "front matter must be a mapping"))
            start = end + 1
    else:
        problems.append(
            Problem(path, 1, "no front matter (--- title/when/duration --- at the top)")
        )
    for key in REQUIRED_FRONT_MATTER:
        if front_matter_read and not rb.meta.get(key):
            problems.append(Problem(path, 1, f"front matter lacks {key!r}"))
    for key in rb.meta:
        if key not in FRONT_MATTER_FIELDS:
            allowed = ", ".join(FRONT_MATTER_FIELDS)
            problems.append(Problem(path, 1, f"unknown front matter field {key!r} ({allowed})"))

    current: Step | None = None
    body: list[str] = []
    intro: list[str] = []
    in_fence: str | None = None
    seen: dict[str, int] = {}

    def close() -> None:
        if current is not None:
            current.text = "\n".join(body).strip()
            rb.steps.append(current)

    for i in range(start, len(lines)):
        ln = lines[i]
        lineno = i + 1
        fence = FENCE_RE.match(ln)
        if fence:
            mark = fence.group(1)[:3]
            if in_fence is None:
                in_fence = mark
            elif mark == in_fence:
                in_fence = None
        h = None if in_fence or fence else HEADING_RE.match(ln)
        if h and len(h.group(1)) <= 2:
            close()
            current, body = None, []
            title = h.group(2)
            m = EXPLICIT_ID_RE.match(title)
            if m and len(h.group(1)) == 2:
                sid = m.group(2).lstrip("#").strip()
                if not ID_RE.match(sid):
                    problems.append(
                        Problem(path, lineno, f"step id {sid!r} must be lowercase, digits and '-'")
                    )
                    continue
                if sid in seen:
                    problems.append(
                        Problem(path, lineno, f"duplicate step id {sid!r} (also line {seen[sid]})")
                    )
                    continue
                seen[sid] = lineno
                title = re.sub(r"^\d+[.)]\s*", "", m.group(1).strip())
                current = Step(id=sid, title=title, text="", line=lineno)
            elif m:
                problems.append(
                    Problem(path, lineno, "only level-2 headings (##) may carry a step id")
                )
            continue
        (body if current is not None else intro).append(ln)
    close()
    rb.intro = "\n".join(intro).strip()
    for s in rb.steps:
        if not s.text:
            problems.append(Problem(path, s.line, f"step {s.id!r} has no text for the operator"))
    return rb, problems
