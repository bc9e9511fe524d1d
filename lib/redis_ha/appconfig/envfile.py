"""The app's dotenv file, edited in place without ever leaving it half-written.

A rollback at 3 a.m. must not corrupt the one file the app reads its Redis address from: the new
content is written to a temporary file in the same folder, fsynced, then swapped in with
`os.replace` (atomic on POSIX), and the folder is fsynced so the rename survives a crash. Only the
named variables change; comments, blank lines, quoting, `export` prefixes, inline comments and the
order of every other line are kept byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from redis_ha.errors import HAError

LINE_RE = re.compile(
    r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)(?P<eq>[ \t]*=[ \t]*)"
    r"(?P<rest>.*?)(?P<nl>\r?\n)?\Z",
    re.DOTALL,
)
SAFE_UNQUOTED = re.compile(r"^[A-Za-z0-9_./:,@%+=${}-]*$")


class EnvFileError(HAError):
    """The dotenv file cannot be read, parsed safely or written."""


@dataclass
class Line:
    """One physical line; `key` is None for comments, blanks and lines we do not understand."""

    text: str
    key: str | None = None
    value: str | None = None
    quote: str = ""  # '' (unquoted), "'" or '"'
    head: str = ""  # everything up to and including '='
    tail: str = ""  # what follows the value: an inline comment, trailing spaces
    nl: str = ""
    opaque: bool = False  # a value we cannot rewrite safely (e.g. multi-line quoted)


def _parse_value(rest: str) -> tuple[str, str, str, bool]:
    """(value, quote, tail, opaque) for the text after '='."""
    if rest[:1] == "'":
        end = rest.find("'", 1)
        if end < 0:
            return rest, "'", "", True
        return rest[1:end], "'", rest[end + 1 :], False
    if rest[:1] == '"':
        i, out = 1, []
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                i += 2
                continue
            if ch == '"':
                return "".join(out), '"', rest[i + 1 :], False
            out.append(ch)
            i += 1
        return rest, '"', "", True
    m = re.search(r"[ \t]+#", rest)
    if m:
        return rest[: m.start()].rstrip(), "", rest[len(rest[: m.start()].rstrip()) :], False
    value = rest.rstrip()
    return value, "", rest[len(value) :], False


def parse(text: str) -> list[Line]:
    """Split dotenv text into lines, understanding `KEY=value` ones and keeping everything else."""
    lines = []
    for raw in text.splitlines(keepends=True):
        m = LINE_RE.match(raw)
        if not m or raw.lstrip().startswith("#"):
            lines.append(Line(text=raw))
            continue
        value, quote, tail, opaque = _parse_value(m["rest"])
        lines.append(
            Line(
                text=raw,
                key=m["key"],
                value=value,
                quote=quote,
                head=m["lead"] + m["key"] + m["eq"],
                tail=tail,
                nl=m["nl"] or "",
                opaque=opaque,
            )
        )
    return lines


def values(lines: list[Line]) -> dict[str, str]:
    """The variables a dotenv file sets (last one wins, as in most loaders)."""
    return {ln.key: ln.value or "" for ln in lines if ln.key and not ln.opaque}


def _quoted(value: str, quote: str) -> str:
    if quote == "'" and "'" not in value and "\n" not in value:
        return f"'{value}'"
    if quote == "" and SAFE_UNQUOTED.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render(lines: list[Line], changes: dict[str, str | None]) -> str:
    """The new text: changed values rewritten in place, `None` removes, new keys appended."""
    out: list[str] = []
    done: set[str] = set()
    for ln in lines:
        if ln.key is None or ln.key not in changes:
            out.append(ln.text)
            continue
        if ln.opaque:
            raise EnvFileError(
                f"{ln.key} has a value this tool cannot rewrite safely (multi-line?); "
                "edit the file by hand"
            )
        new = changes[ln.key]
        done.add(ln.key)
        if new is None:
            continue
        out.append(f"{ln.head}{_quoted(new, ln.quote)}{ln.tail}{ln.nl}")
    added = [(k, v) for k, v in changes.items() if v is not None and k not in done]
    if added and out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    nl = next((ln.nl for ln in lines if ln.nl), "\n")
    out += [f"{k}={_quoted(v, '')}{nl}" for k, v in added]
    return "".join(out)


def read(path: Path) -> dict[str, str]:
    """The variables set in `path`, or a readable error."""
    return values(parse(_read_text(path)))


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise EnvFileError(f"{path}: app env file not found") from None
    except OSError as e:
        raise EnvFileError(f"{path}: cannot read the app env file ({e.strerror})") from None


def atomic_write(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace `path` with `text` so a reader sees either the old or the new file, never half."""
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def backup(path: Path) -> Path:
    """Copy `path` to `<name>.bak.<UTC time>` beside it (atomically) and return the copy."""
    text = _read_text(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = path.with_name(f"{path.name}.bak.{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.bak.{stamp}.{n}")
    atomic_write(dest, text, mode=path.stat().st_mode & 0o777)
    return dest


def update(path: Path, changes: dict[str, str | None]) -> Path:
    """Back up `path`, then apply `changes` atomically; returns the backup's path."""
    text = _read_text(path)
    new = render(parse(text), changes)
    try:
        saved = backup(path)
    except OSError as e:
        raise EnvFileError(
            f"{path}: cannot back up the app env file ({e.strerror}); nothing changed"
        ) from None
    try:
        atomic_write(path, new)
    except OSError as e:
        raise EnvFileError(f"{path}: cannot write the app env file ({e.strerror})") from None
    return saved


def restore(path: Path, saved: Path) -> None:
    """Put a backup back in place, atomically."""
    text = _read_text(saved)
    try:
        atomic_write(path, text)
    except OSError as e:
        raise EnvFileError(f"{path}: cannot put {saved} back ({e.strerror})") from None


class EnvFileBackend:
    """The app reads a dotenv file; it follows changes to it (the lab simulator does)."""

    name = "envfile"

    def __init__(self, path: Path, restart_cmd: str | None = None) -> None:
        self.path = path
        self.restart_cmd = restart_cmd

    def where(self) -> str:
        return f"env file {self.path}"

    def read(self) -> dict[str, str] | None:
        return read(self.path)

    def apply(
        self,
        changes: dict[str, str | None],
        backup_dir: Path,
        previous: dict[str, str | None] | None = None,
    ) -> Path:
        # The backup sits beside the file (same permissions, same disk), where an operator
        # fixing things by hand looks first; backup_dir is for backends without a file.
        return update(self.path, changes)

    def restore(self, backup: Path) -> None:
        restore(self.path, backup)

    def redeploy(self) -> str:
        read(self.path)  # the file must still parse: that is what the app will read
        if not self.restart_cmd:
            return f"the app re-reads {self.path} on change (no app.restart_cmd to run)"
        argv = shlex.split(self.restart_cmd)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EnvFileError(f"app restart command {argv[0]!r} failed: {e}") from None
        if p.returncode != 0:
            last = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EnvFileError(
                f"app restart command {argv[0]!r} exited {p.returncode}: {last[0][:200]}"
            )
        return f"ran the app restart command ({argv[0]})"
