"""Append-only JSONL journal of every procedure run, and its Markdown timeline for postmortems.

One file per run (`journal/<run-id>.jsonl`, run id = `<UTC timestamp>-<procedure>`), one JSON
object per line, flushed at once: a run killed mid-step still leaves everything up to that step,
which is what `--resume` reads back. Secrets are redacted before a line reaches the disk.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis_ha import paths
from redis_ha.cli.names import command
from redis_ha.errors import HAError

ENV_DIR = "REDIS_HA_JOURNAL_DIR"
REDACTED = "***"


class JournalError(HAError):
    """A journal cannot be found or read."""


def journal_dir() -> Path:
    """$REDIS_HA_JOURNAL_DIR, else `journal/` in the home folder (never inside the install)."""
    return Path(os.environ.get(ENV_DIR) or paths.home() / "journal")


def operator() -> str:
    """Who is running this: $REDIS_HA_OPERATOR, else the login name."""
    who = os.environ.get("REDIS_HA_OPERATOR")
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def whoami() -> dict[str, Any]:
    return {"who": operator(), "host": socket.gethostname(), "pid": os.getpid()}


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def redact(obj: Any, secrets: list[str]) -> Any:
    """`obj` with every secret string replaced, at any depth.

    Values JSON has no type for become text here, as `json.dumps(default=str)` would make them,
    so the secret cannot come back in that text. Longer secrets go first: one that contains
    another is replaced whole.
    """
    if not secrets:
        return obj
    if isinstance(obj, str):
        for s in sorted(secrets, key=len, reverse=True):
            if s:
                obj = obj.replace(s, REDACTED)
        return obj
    if isinstance(obj, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, secrets) for v in obj]
    if obj is None or isinstance(obj, (int, float)):
        return obj
    return redact(str(obj), secrets)


class Journal:
    """The journal of one run; `write` appends one record and flushes it."""

    def __init__(self, path: Path, secrets: list[str] | None = None) -> None:
        self.path = path
        self.secrets = [s for s in (secrets or []) if s]

    @property
    def run_id(self) -> str:
        return self.path.stem

    @classmethod
    def create(cls, procedure: str, secrets: list[str] | None = None) -> Journal:
        d = journal_dir()
        d.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        n = 1
        while True:
            suffix = f"-{n}" if n > 1 else ""
            path = d / f"{stamp}-{procedure}{suffix}.jsonl"
            try:
                path.open("x").close()  # exclusive: a run started in the same second gets -2
            except FileExistsError:
                n += 1
                continue
            return cls(path, secrets)

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        rec = {"ts": time.time(), "event": event, **fields}
        rec = redact(rec, self.secrets)
        line = json.dumps(rec, default=str)
        with self.path.open("a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return rec


def runs(d: Path | None = None) -> list[Path]:
    """Journal files, oldest first (run journals are named `<UTC time>-<procedure>.jsonl`; the
    folder also holds other JSONL files, e.g. split-brain salvage exports)."""
    d = d or journal_dir()
    return sorted(p for p in d.glob("*.jsonl") if p.name[:1].isdigit()) if d.exists() else []


def _procedure_of(path: Path) -> str:
    """`20260101T000000Z-failover-manual-2` -> `failover-manual`."""
    name = path.stem.split("-", 1)[-1]
    head, _, tail = name.rpartition("-")
    return head if tail.isdigit() and head else name


def find(run: str | None, procedure: str | None = None) -> Path:
    """A run by id, unique id prefix, path, or `latest`/None for the most recent (of
    `procedure`, when given)."""
    all_runs = runs()
    if procedure and (not run or run == "latest"):
        all_runs = [r for r in all_runs if _procedure_of(r) == procedure]
        if not all_runs:
            raise JournalError(f"no {procedure} run in {journal_dir()} to resume")
    if not run or run == "latest":
        if not all_runs:
            raise JournalError(f"no journal in {journal_dir()} yet")
        return all_runs[-1]
    p = Path(run)
    if p.suffix == ".jsonl" and p.exists():
        return p
    exact = [r for r in all_runs if r.stem == run]
    if exact:
        return exact[0]
    hits = [r for r in all_runs if run in r.stem]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise JournalError(f"no run {run!r} in {journal_dir()} (see: {command('journal.list')})")
    names = ", ".join(h.stem for h in hits[:5])
    raise JournalError(f"{run!r} matches {len(hits)} runs ({names}); be more precise")


def read(path: Path) -> list[dict[str, Any]]:
    """Every record of a run; a torn last line (crash mid-write) is ignored."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text()
    except OSError as e:
        raise JournalError(f"cannot read {path} ({e.strerror})") from None
    for ln in text.splitlines():
        if not ln.strip():
            continue
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError:
            continue
    return out


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Procedure, operator, target, start time and final result of a run."""
    start = next((r for r in records if r["event"] == "start"), {})
    end = [r for r in records if r["event"] == "end"]
    result = end[-1]["result"] if end else "unfinished"
    return {
        "procedure": start.get("procedure"),
        "who": start.get("who"),
        "host": start.get("host"),
        "inventory": start.get("inventory"),
        "started": start.get("ts"),
        "dry_run": start.get("dry_run", False),
        "result": result,
        "exit_code": end[-1].get("exit_code") if end else None,
    }


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    return f"{m} min {sec:02d} s"


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def to_markdown(records: list[dict[str, Any]], run_id: str = "") -> str:
    """A timeline a postmortem can paste: who, what, when, each step's result and answers."""
    if not records:
        return f"# Run {run_id}\n\n(empty journal)\n"
    s = summary(records)
    start = next((r for r in records if r["event"] == "start"), records[0])
    lines = [
        f"# {start.get('title') or s['procedure']} — run {run_id}",
        "",
        f"- **Procedure:** {s['procedure']}" + (" (dry run)" if s["dry_run"] else ""),
        f"- **Operator:** {s['who']} on {s['host']} (pid {start.get('pid')})",
        f"- **Target:** {start.get('inventory_name')} ({s['inventory']})",
        f"- **Primary at start:** {start.get('primary') or 'none'}",
        f"- **Started:** {utc(start['ts'])}",
        f"- **Result:** {s['result']}"
        + (f" (exit {s['exit_code']})" if s["exit_code"] is not None else ""),
    ]
    if start.get("params"):
        ps = ", ".join(f"{k}={v}" for k, v in start["params"].items())
        lines.append(f"- **Parameters:** {ps}")
    lines += ["", "## Timeline", "", "| time (UTC) | step | event | detail |", "|---|---|---|---|"]
    for r in records:
        ev = r["event"]
        detail = _detail(r)
        if detail is None:
            continue
        step = r.get("step", "")
        lines.append(f"| {_hms(r['ts'])} | {step} | {ev} | {detail} |")
    steps = [r for r in records if r["event"] == "step-end"]
    if steps:
        lines += [
            "",
            "## Steps",
            "",
            "| step | result | duration | expected |",
            "|---|---|---|---|",
        ]
        for r in steps:
            exp = _dur(r.get("expected_s")) if r.get("expected_s") else "-"
            flag = " ⚠ over" if r.get("over_expected") else ""
            lines.append(
                f"| {r.get('step')} | {r.get('result')} | {_dur(r.get('duration_s'))}{flag} "
                f"| {exp} |"
            )
    end = next((r for r in reversed(records) if r["event"] == "end"), None)
    if end:
        lines += ["", f"Total time: {_dur(end.get('duration_s'))}."]
        if "primary_after" in end:
            lines.append(f"Primary at the end: {end.get('primary_after') or 'none'}.")
        if end.get("problems_after"):
            lines += ["", "Problems at the end:", ""]
            lines += [f"- {p}" for p in end["problems_after"]]
    return "\n".join(lines) + "\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _detail(r: dict[str, Any]) -> str | None:
    ev = r["event"]
    if ev == "start":
        return _cell(f"{r.get('who')} starts {r.get('procedure')} on {r.get('inventory_name')}")
    if ev == "lock":
        return _cell(r.get("message", ""))
    if ev == "resume":
        return _cell(f"resumed by {r.get('who')} from step {r.get('from_step')}")
    if ev in ("guard", "verify"):
        mark = "ok" if r.get("ok") else "FAILED"
        return _cell(f"{r.get('check')}: {mark} — {r.get('message', '')}")
    if ev == "answer":
        return _cell(
            f"operator answered **{r.get('answer')}**" + (" (--yes)" if r.get("auto") else "")
        )
    if ev == "step-start":
        return _cell(r.get("title", ""))
    if ev == "step-end":
        out = r.get("output") or []
        msg = r.get("error") or ("; ".join(out) if isinstance(out, list) else str(out))
        return _cell(f"**{r.get('result')}** in {_dur(r.get('duration_s'))}. {msg}".strip())
    if ev == "undo":
        return _cell(f"undo {r.get('action')}: {r.get('result')} {r.get('message', '')}".strip())
    if ev == "plan":
        return _cell(f"would: {r.get('would')}")
    if ev == "interrupted":
        return _cell(f"interrupted: {r.get('message', '')}")
    if ev == "end":
        return _cell(f"**{r.get('result')}**: {r.get('message', '')}")
    if ev == "note":
        return _cell(r.get("message", ""))
    return None
