"""One setting chooses the lab's server binaries; a running lab keeps its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from redis_ha import inventory
from redis_ha.errors import InventoryError, LabError
from redis_ha.lab import binaries
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import lab_inventory_dict, write_lab_inventory
from tests.conftest import run_invoke


def _inv(tmp_path: Path, **extra: Any) -> inventory.Inventory:
    d = {**lab_inventory_dict(tmp_path), **extra}
    return inventory.from_dict(d, tmp_path / "inventory.yaml")


def test_first_setting_that_is_set_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = _inv(tmp_path, lab_server="valkey")
    monkeypatch.delenv(binaries.ENV_BIN, raising=False)
    monkeypatch.delenv(binaries.ENV_SERVER, raising=False)
    assert binaries.choice(None, None) is None
    assert binaries.choice(None, inv) == ("valkey", "the inventory's lab_server")
    monkeypatch.setenv(binaries.ENV_SERVER, "redis")
    assert binaries.choice(None, inv) == ("redis", "$REDIS_HA_SERVER")
    monkeypatch.setenv(binaries.ENV_BIN, "/opt/valkey/bin")
    assert binaries.choice(None, inv) == ("/opt/valkey/bin", "$REDIS_HA_SERVER_BIN")
    assert binaries.choice("valkey", inv) == ("valkey", "--server")


def test_inventory_lab_server_is_validated_and_folders_resolved(tmp_path: Path) -> None:
    assert _inv(tmp_path, lab_server="./bin").lab_server == str((tmp_path / "bin").resolve())
    with pytest.raises(InventoryError, match="lab_server: 'valky' is not redis or valkey"):
        _inv(tmp_path, lab_server="valky")


def test_unknown_server_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="unknown server 'nope'") as e:
        binaries.resolve("nope")
    assert e.value.code == 2
    with pytest.raises(LabError, match="no redis-server or valkey-server in this folder"):
        binaries.resolve(str(tmp_path))


def test_the_binary_says_what_it_is(
    tmp_path: Path, binaries_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder's `redis-server` that is really Valkey is reported as Valkey; with no
    sentinel-named binary, Sentinels run as `server conf --sentinel`."""
    valkey = binaries_of("valkey")
    (tmp_path / "redis-server").symlink_to(Path(valkey.server).resolve())
    b = binaries.resolve(str(tmp_path))
    assert (b.kind, b.version) == ("valkey", valkey.version)
    monkeypatch.chdir(tmp_path.parent)
    assert binaries.resolve(tmp_path.name).server == b.server  # relative: made absolute
    assert b.sentinel_flag and b.sentinel_argv(Path("s.conf")) == [b.server, "s.conf", "--sentinel"]
    assert not valkey.sentinel_flag  # setup links valkey-sentinel: Sentinel mode by its name


def test_a_running_lab_keeps_its_server(
    tmp_path: Path, binaries_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(binaries.ENV_BIN, raising=False)  # only the explicit choice asks here
    monkeypatch.delenv(binaries.ENV_SERVER, raising=False)
    redis_bins, valkey_bins = binaries_of("redis"), binaries_of("valkey")
    inv = _inv(tmp_path)
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    binaries.record(lab_dir, redis_bins)
    assert binaries.recorded(lab_dir) == redis_bins
    with pytest.raises(LabError, match=r"the lab runs redis .* --server asks for valkey"):
        binaries.for_lab(inv, lab_dir, "valkey", running=True)
    assert binaries.for_lab(inv, lab_dir, None, running=True) == redis_bins
    assert binaries.for_lab(inv, lab_dir, "valkey", running=False) == valkey_bins
    (lab_dir / binaries.RECORD).write_text(json.dumps({"kind": "redis"}))  # damaged: ignored
    assert binaries.recorded(lab_dir) is None


def test_lab_up_on_valkey_and_status_shows_it(tmp_path: Path, binaries_of: Any) -> None:
    valkey = binaries_of("valkey")
    path = write_lab_inventory(tmp_path, single=False)
    env = {binaries.ENV_SERVER: "", binaries.ENV_BIN: ""}  # only --server decides here
    try:
        up = run_invoke("lab.up", "--server", "valkey", inventory=path, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"on {valkey.label}" in up.stdout
        st = run_invoke("status", "--json", inventory=path, env=env)
        d = json.loads(st.stdout)
        procs = [*d["nodes"], *d["sentinels"]]
        assert {(p["server"], p["version"]) for p in procs} == {("valkey", valkey.version)}
        table = run_invoke("status", inventory=path, env=env)
        assert table.stdout.count(valkey.label) == 6  # a server column in both tables
        # Asking for Redis while the Valkey lab runs: refused in one line, nothing started.
        again = run_invoke("lab.up", "--server", "redis", inventory=path, env=env)
        assert again.returncode == 2 and "run `invoke lab.down` first" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        down = run_invoke("lab.down", inventory=path, env=env)
    assert down.returncode == 0 and "stopped" in down.stdout


def test_an_unmarked_test_cannot_start_lab_processes(tmp_path: Path) -> None:
    """The guard that keeps `pytest -m "not lab"` free of server processes (conftest)."""
    lab = Lab(inventory.load(write_lab_inventory(tmp_path)))
    with pytest.raises(AssertionError, match="starts lab processes: use a lab fixture"):
        lab.up(timeout=5)
    assert not lab.running()
