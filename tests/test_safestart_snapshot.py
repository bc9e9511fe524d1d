"""The start wrapper drops the replication snapshot a node without persistence left behind."""

from __future__ import annotations

from pathlib import Path

from redis_ha.safestart import stale_snapshot


def conf(tmp_path: Path, body: str) -> list[str]:
    c = tmp_path / "redis.conf"
    c.write_text(body)
    return ["redis-server", str(c)]


def test_snapshot_found_when_persistence_is_off(tmp_path: Path) -> None:
    (tmp_path / "dump.rdb").write_bytes(b"REDIS0010")
    argv = conf(tmp_path, f'dir "{tmp_path}"\nsave ""\nappendonly no\n')
    assert stale_snapshot(argv) == tmp_path / "dump.rdb"


def test_custom_dbfilename_and_argv_overrides(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "snap.rdb").write_bytes(b"x")
    argv = conf(tmp_path, f'dir "{tmp_path}"\nsave ""\n# dbfilename ignored.rdb\n')
    assert stale_snapshot([*argv, "--dir", str(other), "--dbfilename", "snap.rdb"]) == (
        other / "snap.rdb"
    )


def test_kept_when_persistence_is_on_or_nothing_there(tmp_path: Path) -> None:
    (tmp_path / "dump.rdb").write_bytes(b"x")
    assert stale_snapshot(conf(tmp_path, f'dir "{tmp_path}"\nsave 3600 1\n')) is None
    assert stale_snapshot(conf(tmp_path, f'dir "{tmp_path}"\n')) is None  # Redis default saves
    on = f'dir "{tmp_path}"\nsave ""\nappendonly yes\n'
    assert stale_snapshot(conf(tmp_path, on)) is None
    (tmp_path / "dump.rdb").unlink()
    assert stale_snapshot(conf(tmp_path, f'dir "{tmp_path}"\nsave ""\n')) is None
