"""The dotenv rewrite: only the named variables change, atomically, with a backup."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from redis_ha.appconfig import envfile
from redis_ha.client import read_env_file

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


def test_multiline_value_is_refused_not_mangled(tmp_path: Path) -> None:
    p = tmp_path / "app.env"
    p.write_text('REDIS_URL="redis://a:1/0\nstill the value"\n')
    with pytest.raises(envfile.EnvFileError, match="cannot rewrite safely"):
        envfile.update(p, {"REDIS_URL": "redis://b:2/0"})
    assert p.read_text() == 'REDIS_URL="redis://a:1/0\nstill the value"\n'


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
