"""The app's dotenv file: read as python-dotenv reads it; rewritten atomically, with a backup,
only the named variables changing, and written so that python-dotenv reads back what was meant."""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_ha.appconfig import envfile
from redis_ha.client import ClientConfigError, read_env_file

ORIGINAL = """\
# App settings: keep this comment
export APP_NAME="session cache"   # inline comment stays
REDIS_SENTINELS=127.0.0.1:26379,127.0.0.1:26380
REDIS_SENTINEL_MASTER='mymaster'

SECRET_KEY="a \\"quoted\\" value"
REDIS_PASSWORD_FILE=/run/secrets/redis
LAST_LINE=no-newline"""


def test_rewrite_keeps_everything_else_byte_for_byte(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text(ORIGINAL)
    os.chmod(p, 0o640)
    saved = envfile.update(
        p,
        {
            "REDIS_URL": "redis://127.0.0.1:6390/0",
            "REDIS_SENTINELS": None,
            "REDIS_SENTINEL_MASTER": None,
        },
    )
    new = p.read_text()
    assert new == (
        "# App settings: keep this comment\n"
        'export APP_NAME="session cache"   # inline comment stays\n'
        "\n"
        'SECRET_KEY="a \\"quoted\\" value"\n'
        "REDIS_PASSWORD_FILE=/run/secrets/redis\n"
        "LAST_LINE=no-newline\n"
        "REDIS_URL=redis://127.0.0.1:6390/0\n"
    )
    assert saved.read_text() == ORIGINAL
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert stat.S_IMODE(saved.stat().st_mode) == 0o640
    # The app simulator's reader agrees with ours.
    assert read_env_file(p)["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert envfile.read(p)["SECRET_KEY"] == 'a "quoted" value'
    # No temporary file left behind.
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(["app.env", saved.name])


def test_in_place_change_keeps_quote_style_and_inline_comment(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text("export REDIS_URL='redis://a:1/0'  # legacy\r\nOTHER=1\r\n")
    envfile.update(p, {"REDIS_URL": "redis://b:2/0", "NEW": "x y"})
    assert p.read_bytes().decode() == (
        "export REDIS_URL='redis://b:2/0'  # legacy\r\nOTHER=1\r\nNEW=\"x y\"\r\n"
    )


def test_restore_puts_the_backup_back(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text(ORIGINAL)
    saved = envfile.update(p, {"REDIS_SENTINELS": None})
    envfile.restore(p, saved)
    assert p.read_text() == ORIGINAL


def test_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "app.env"
    p.write_text(ORIGINAL)

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(envfile.os, "replace", boom)
    with pytest.raises(OSError):
        envfile.atomic_write(p, "garbage")
    assert p.read_text() == ORIGINAL
    assert [x.name for x in tmp_path.iterdir()] == ["app.env"]


def test_multiline_value_is_rewritten_whole(tmp_path: Path) -> None:
    """python-dotenv delimits the statement, so a multi-line value is replaced, not mangled."""
    p = tmp_path / "app.env"
    p.write_text('A=1\nREDIS_URL="redis://a:1/0\nstill the value"  # two lines\nB=2\n')
    envfile.update(p, {"REDIS_URL": "redis://b:2/0"})
    assert p.read_text() == 'A=1\nREDIS_URL="redis://b:2/0"  # two lines\nB=2\n'


def test_missing_file_is_one_readable_error(tmp_path: Path) -> None:
    with pytest.raises(envfile.EnvFileError, match="app env file not found"):
        envfile.update(tmp_path / "nope.env", {"A": "1"})


def test_disk_full_is_one_readable_error_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backup is written first: its failure must be an EnvFileError too, not a bare OSError
    (the runner would report that as a bug, and a restore failing this way would hide the first
    error)."""
    p = tmp_path / "app.env"
    p.write_text(ORIGINAL)

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(envfile.os, "replace", boom)
    with pytest.raises(envfile.EnvFileError, match="No space left on device"):
        envfile.update(p, {"REDIS_URL": "redis://b:2/0"})
    assert p.read_text() == ORIGINAL
    assert [x.name for x in tmp_path.iterdir()] == ["app.env"]
    saved = tmp_path / "app.env.bak.x"
    saved.write_text("REDIS_URL=redis://a:1/0\n")
    with pytest.raises(envfile.EnvFileError, match="No space left on device"):
        envfile.restore(p, saved)
    assert p.read_text() == ORIGINAL


# --- reading: the same answer as python-dotenv, case by case ---------------------------------

READ_CASES = {
    "escaped single quote": "F='it\\'s'\n",
    "multi-line double-quoted": 'M="line one\nline two"\nAFTER=1\n',
    "multi-line single-quoted": "M='line one\nline two'\nAFTER=1\n",
    "escaped backslash in single quotes": "B='a\\\\b'\n",
    "escaped backslash in double quotes": 'B="a\\\\b"\n',
    "backslash-n in single quotes stays": "N='a\\nb'\n",
    "backslash-n in double quotes is a newline": 'N="a\\nb"\n',
    "export prefix": "export E=1\nexport  Q='x y'\n",
    "comments": "# full line\nC=1 # inline\nD='2'# right after\nH=a#b\n",
    "empty value then comment": "K= # only a comment\nL=#not-a-comment\n",
    "empty and valueless": "EMPTY=\nALONE\nSPACED = value with spaces   \n",
    "CRLF line endings": "A=1\r\nB=\"two\"\r\nC='3'\r\n",
    "interpolation": "HOST=db\nURL=redis://${HOST}:6379\nDEF=${MISSING:-fallback}\n",
    "single quotes do not stop interpolation": "HOST=db\nURL='redis://${HOST}'\n",
    "broken statement is skipped": 'A="unterminated\nB=2\n',
    "duplicate key: last wins": "D=1\nD=2\n",
    "quoted key": "'Q K'=1\n",
    "unicode and BOM": "\ufeffU=caf\u00e9\n",
    "dollar without braces": "P=pa$word\nQ=$${x\n",
}


@pytest.mark.parametrize("text", READ_CASES.values(), ids=READ_CASES.keys())
def test_reader_agrees_with_python_dotenv(tmp_path: Path, text: str) -> None:
    p = tmp_path / "app.env"
    p.write_bytes(text.encode())
    expected = {k: v for k, v in dotenv_values(p).items() if v is not None}
    assert envfile.read(p) == expected
    assert envfile.values(text) == expected
    if "broken" not in text and "unterminated" not in text and "ALONE" not in text:
        assert read_env_file(p) == expected  # the app simulator reads the same values


def test_cases_the_old_reader_got_wrong() -> None:
    """The three the issue names, spelled out (they read differently before python-dotenv)."""
    assert envfile.values(READ_CASES["escaped single quote"]) == {"F": "it's"}
    assert envfile.values(READ_CASES["multi-line double-quoted"])["M"] == "line one\nline two"
    assert envfile.values(READ_CASES["escaped backslash in single quotes"]) == {"B": "a\\b"}


def test_client_refuses_a_statement_python_dotenv_would_skip(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text('REDIS_URL=redis://a:1/0\nREDIS_SENTINELS="127.0.0.1:1\n')
    with pytest.raises(ClientConfigError, match=r"app.env:2: expected KEY=value"):
        read_env_file(p)


# --- writing: python-dotenv (interpolation on) reads back exactly the value written ----------

WRITE_VALUES = [
    "redis://127.0.0.1:6390/0",
    "${{legacy.REDIS_URL}}",  # a Railway reference: must not be expanded by a dotenv app
    "redis://${HOST}:6379/0",
    "${HOST:-fallback}",
    "$${HOST}",
    "${unterminated",
    "pa$word",
    "it's",
    'say "hi"',
    "a\\b",
    "a\\'b",
    "line one\nline two",
    "cr\rhere",
    "# not a comment",
    "a #b",
    "  padded  ",
    "",
    "tab\there",
    "caf\u00e9",
]
STYLES = {"bare": "K=old\n", "single": "K='old'\n", "double": 'K="old"\n', "new": ""}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("value", WRITE_VALUES)
def test_written_value_reads_back_with_interpolation_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, style: str
) -> None:
    monkeypatch.setenv("HOST", "EXPANDED")  # an expansion would show
    monkeypatch.setenv("legacy.REDIS_URL", "EXPANDED")
    p = tmp_path / "app.env"
    before = "# keep me\nHOST=file-host\n" + STYLES[style] + "LAST='x'  # stays\n"
    p.write_text(before)
    envfile.update(p, {"K": value})
    assert dotenv_values(p, interpolate=True)["K"] == value
    assert envfile.read(p)["K"] == value
    after = p.read_text()
    assert after.startswith("# keep me\nHOST=file-host\n")
    assert "LAST='x'  # stays\n" in after
    if "${" not in value:  # nothing to escape: the plain spelling, read the same without it
        assert dotenv_values(p, interpolate=False)["K"] == value


def test_railway_reference_is_written_escaped_not_expanded(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text("REDIS_SENTINELS=127.0.0.1:26379\n")
    envfile.update(p, {"REDIS_URL": "${{legacy.REDIS_URL}}", "REDIS_SENTINELS": None})
    assert p.read_text() == 'REDIS_URL="${:-$}{{legacy.REDIS_URL}}"\n'
    assert dotenv_values(p) == {"REDIS_URL": "${{legacy.REDIS_URL}}"}


def test_a_rewrite_python_dotenv_would_misread_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net: the new text is read back before it is written."""
    p = tmp_path / "app.env"
    p.write_text("A=1\nB=2\n")
    monkeypatch.setattr(envfile, "_quoted", lambda value, quote: "'unterminated")
    with pytest.raises(envfile.EnvFileError, match="would change how python-dotenv reads"):
        envfile.update(p, {"A": "3"})
    assert p.read_text() == "A=1\nB=2\n"
    assert [x.name for x in tmp_path.iterdir()] == ["app.env"]


def test_nul_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text("A=1\n")
    with pytest.raises(envfile.EnvFileError, match="NUL"):
        envfile.update(p, {"A": "x\0y"})
    assert p.read_text() == "A=1\n"


# Any text a variable can hold (no NUL, no lone surrogate), in every quote style of the old line.
any_value = st.text(
    alphabet=st.one_of(
        st.sampled_from("${}:-'\"\\#= \t\n\rxA1"),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=any_value, style=st.sampled_from(sorted(STYLES)), other=any_value)
def test_any_value_round_trips_through_python_dotenv(value: str, style: str, other: str) -> None:
    """Property: whatever is written, python-dotenv (interpolation on) reads it back as written,
    and a neighbouring variable (itself written by us) keeps its exact text."""
    first = envfile.render("", {"OTHER": other})
    text = first + STYLES[style] + "# end\n"
    new = envfile.render(text, {"K": value})
    read = dotenv_values(stream=io.StringIO(new), interpolate=True)
    assert read["K"] == value
    assert read["OTHER"] == other
    assert new.startswith(first) and "# end\n" in new
    with tempfile.TemporaryDirectory() as d:  # and from a file, as an app opens it
        p = Path(d) / "app.env"
        p.write_bytes(new.encode())
        assert dotenv_values(p)["K"] == value


def test_a_run_backs_the_file_up_once(tmp_path: Path) -> None:
    """Keyed by the run: the switch resumed after a kill between its write and its journal
    record keeps the backup of the file before the run, not the text it had written."""
    p = tmp_path / "app.env"
    p.write_text(ORIGINAL)
    first = envfile.update(p, {"REDIS_URL": "redis://b:2/0"}, key="run-1")
    switched = p.read_text()
    again = envfile.update(p, {"REDIS_URL": "redis://b:2/0"}, key="run-1")
    assert again == first and first.name == "app.env.bak.run-1"
    assert first.read_text() == ORIGINAL and p.read_text() == switched
    other = envfile.update(p, {"REDIS_URL": None}, key="run-2")  # another run: its own copy
    assert other.read_text() == switched
