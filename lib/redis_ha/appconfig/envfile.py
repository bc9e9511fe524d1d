"""The app's dotenv file: read as python-dotenv reads it, edited without leaving it half-written.

Reading is python-dotenv's own (`dotenv_values`, interpolation on, as `load_dotenv()` does), so
the rollback, the lab's app simulator (`redis_ha.client`) and a Python app see the same values.

Writing: python-dotenv's parser splits the file into statements, each with its exact text; only
the statements of the named variables are rewritten (keeping `export`, the key, an inline comment
and the line ending), new variables are appended, every other byte stays. The new text is read
back with python-dotenv before it is written, and refused if any variable would read differently
from what was meant. Then it goes to a temporary file in the same folder, fsynced, swapped in with
`os.replace` (atomic on POSIX), and the folder is fsynced so the rename survives a crash.

Quoting: a value is written bare when it is plain, else in the file's quotes (single quotes only
when the value holds no quote, backslash or newline; double quotes with escapes otherwise).
python-dotenv expands `${NAME}` in every value, quoted or not, and has no escape for it
(theskumar/python-dotenv#422); a value that would expand has its `${` written `${:-$}{`: an
empty name is never set, so it reads as its default, `$`. An app that reads with interpolation
off would see that spelling; apps with python-dotenv's defaults read the value meant.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import Binding, parse_stream
from dotenv.variables import Variable, parse_variables

from redis_ha import failpoint
from redis_ha.errors import HAError

# What python-dotenv reads the same bare, quoted or not, in any version (no `$`, quote, `#`).
PLAIN = re.compile(r"[A-Za-z0-9_./:,@%+=-]*")
# The statement's text up to its value: blank lines before it, `export`, the key, `=`.
HEAD = re.compile(r"\s*(?:export[^\S\r\n]+)?(?:'[^']+'|[^=#\s]+)[^\S\r\n]*=[^\S\r\n]*")
QUOTED = {
    "'": re.compile(r"'(?:\\.|[^'\\])*'", re.DOTALL),
    '"': re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL),
}
NEWLINE = re.compile(r"(\r\n|\n|\r)\Z")
BLANK_LINES = re.compile(r"(?:[^\S\r\n]*(?:\r\n|\n|\r))*")
ESCAPED_DOLLAR = "${:-$}"


class EnvFileError(HAError):
    """The dotenv file cannot be read, parsed safely or written."""


def parse(text: str) -> list[Binding]:
    """python-dotenv's statements (key None for comments and blanks; error for broken ones)."""
    return list(parse_stream(io.StringIO(text)))


def values(text: str, *, interpolate: bool = True) -> dict[str, str]:
    """The variables `text` sets, exactly as python-dotenv reads them from a file.

    A key with no `=` (python-dotenv gives it None) is left out: an app never sees it set.
    """
    unified = text.replace("\r\n", "\n").replace("\r", "\n")  # a file's universal newlines
    read = dotenv_values(stream=io.StringIO(unified), interpolate=interpolate)
    return {k: v for k, v in read.items() if v is not None}


def literal(value: str) -> str:
    """`value` spelled so that python-dotenv's interpolation gives it back unchanged."""
    if any(isinstance(a, Variable) for a in parse_variables(value)):
        return value.replace("${", ESCAPED_DOLLAR + "{")
    return value


def _quoted(value: str, quote: str) -> str:
    """`value` as it goes after `=`, in the style of the statement it replaces."""
    text = literal(value)
    if quote == "" and PLAIN.fullmatch(text):
        return text
    if quote == "'" and not any(ch in text for ch in "'\\\n\r"):
        return f"'{text}'"
    for old, new in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(old, new)
    return f'"{text}"'


def _split(statement: str) -> tuple[str, str, str]:
    """(head, quote, tail) of a statement python-dotenv parsed: what precedes the value, the
    value's quote ('' bare), and what follows it (inline comment, spaces, line ending)."""
    m = HEAD.match(statement)
    if m is None:
        raise EnvFileError(f"cannot find the value in {statement.strip()[:40]!r}")
    head, rest = m.group(0), statement[m.end() :]
    q = QUOTED.get(rest[:1])
    if q is not None:
        end = q.match(rest)
        if end is None:
            raise EnvFileError(f"cannot find the end of the value in {statement.strip()[:40]!r}")
        return head, rest[0], rest[end.end() :]
    nl = NEWLINE.search(rest)
    line = rest[: nl.start()] if nl else rest
    if line[:1] == "#" and head[-1:] in (" ", "\t"):
        return head, "", rest  # `KEY= # comment`: an empty value, then the comment
    comment = re.search(r"\s+#", line)
    value = (line[: comment.start()] if comment else line).rstrip()
    return head, "", rest[len(value) :]


def _blank_lines(statement: str) -> str:
    """The whole blank lines a statement starts with (python-dotenv counts them in)."""
    m = BLANK_LINES.match(statement)
    return m.group(0) if m else ""


def render(text: str, changes: dict[str, str | None]) -> str:
    """The new text: changed values rewritten in place, `None` removes, new keys appended.

    Raises EnvFileError, writing nothing, if python-dotenv would not read back what was meant.
    """
    for k, v in changes.items():
        if v is not None and "\0" in v:
            raise EnvFileError(f"{k}: a value cannot hold a NUL character")
    statements = parse(text)
    found = (NEWLINE.search(b.original.string) for b in statements)
    nl = next((m.group(0) for m in found if m), "\n")  # the file's own line ending
    out: list[str] = []
    done: set[str] = set()
    for b in statements:
        stmt = b.original.string
        if b.key is None or b.key not in changes:
            out.append(stmt)
            continue
        done.add(b.key)
        new = changes[b.key]
        if b.value is None:  # `KEY` alone: no value to keep the style of
            end = NEWLINE.search(stmt)
            head = _blank_lines(stmt) + f"{b.key}="
            quote, tail = "", end.group(0) if end else ""
        else:
            head, quote, tail = _split(stmt)
        if new is None:
            out.append(_blank_lines(head))  # the blank lines before it stay
        else:
            out.append(f"{head}{_quoted(new, quote)}{tail}")
    added = [(k, v) for k, v in changes.items() if v is not None and k not in done]
    new_text = "".join(out)
    if added and new_text and not new_text.endswith(("\n", "\r")):
        new_text += nl
    new_text += "".join(f"{k}={_quoted(v, '')}{nl}" for k, v in added)
    _check(text, new_text, changes)
    return new_text


def _check(old: str, new: str, changes: dict[str, str | None]) -> None:
    """Refuse a rewrite that python-dotenv would read differently from what was meant."""
    before, after = values(old, interpolate=False), values(new, interpolate=False)
    meant = {k: v for k, v in before.items() if k not in changes}
    wrong = sorted(k for k, v in meant.items() if after.get(k) != v)
    read = values(new)
    wrong += sorted(k for k, v in changes.items() if read.get(k) != v)
    if wrong:
        raise EnvFileError(
            f"rewriting would change how python-dotenv reads {', '.join(wrong)}; "
            "nothing changed: edit the file by hand"
        )


def read(path: Path) -> dict[str, str]:
    """The variables set in `path` as a python-dotenv app reads them, or a readable error."""
    return values(_read_text(path))  # a missing file is an error, not an empty config


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
    failpoint.changed(f"wrote {path.name}")


def backup(path: Path, key: str | None = None) -> Path:
    """Copy `path` to `<name>.bak.<key or UTC time>` beside it (atomically); returns the copy.

    A backup under `key` (a run's id) that exists already is kept as it is: it was made before
    that run's change, and a resumed run must not save the text it had already written.
    """
    if key is not None:
        dest = path.with_name(f"{path.name}.bak.{key}")
        if dest.exists():
            return dest
    text = _read_text(path)
    if key is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = path.with_name(f"{path.name}.bak.{stamp}")
        n = 1
        while dest.exists():
            n += 1
            dest = path.with_name(f"{path.name}.bak.{stamp}.{n}")
    atomic_write(dest, text, mode=path.stat().st_mode & 0o777)
    return dest


def update(path: Path, changes: dict[str, str | None], key: str | None = None) -> Path:
    """Back up `path` (once per `key`, see `backup`), then apply `changes` atomically; returns
    the backup's path."""
    text = _read_text(path)
    new = render(text, changes)
    try:
        saved = backup(path, key)
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
        key: str | None = None,
    ) -> Path:
        # The backup sits beside the file (same permissions, same disk), where an operator
        # fixing things by hand looks first; backup_dir is for backends without a file.
        return update(self.path, changes, key)

    def restore(self, backup: Path) -> None:
        restore(self.path, backup)

    def redeploy(self) -> str:
        read(self.path)  # the file must still parse: that is what the app will read
        if not self.restart_cmd:
            return f"the app re-reads {self.path} on change (no app.restart_cmd to run)"
        argv = shlex.split(self.restart_cmd)
        try:
            # Its own session: the operator's Ctrl-C stops this tool, not the app's restart
            # half-way. Else the interrupted restart counts as a failed redeploy and the step's
            # thread, still running, puts the old config back after the run has journaled
            # "interrupted" with the new one in place.
            p = subprocess.run(
                argv, capture_output=True, text=True, timeout=300, start_new_session=True
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EnvFileError(f"app restart command {argv[0]!r} failed: {e}") from None
        failpoint.changed("ran the app restart command")
        if p.returncode != 0:
            last = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EnvFileError(
                f"app restart command {argv[0]!r} exited {p.returncode}: {last[0][:200]}"
            )
        return f"ran the app restart command ({argv[0]})"
