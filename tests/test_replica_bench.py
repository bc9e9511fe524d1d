"""`bench.rebuild`: size parsing, and one tiny end-to-end run on a lab of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redis_ha.bench import rebuild as rb
from redis_ha.errors import HAError


def test_parse_sizes():
    assert rb.parse_sizes("1,0.1, 0.5") == [0.1, 0.5, 1.0]
    for bad in ("", "a,b", "0", "-1", "100"):
        with pytest.raises(HAError, match="--sizes"):
            rb.parse_sizes(bad)


@pytest.mark.lab
def test_tiny_bench_writes_a_comparable_result(tmp_path: Path):
    result = rb.run_bench([0.02], runs=1, out_dir=tmp_path, log=lambda _m: None)
    (row,) = result["rows"]
    assert row["keys"] > 10_000
    assert row["floor_s"] > 0 and row["rebuild_total_s"] > 0
    assert row["rebuild_to_in_sync_s"] is not None
    assert set(row["step_elapsed_s"]) == {
        "diagnose", "preflight", "unpromotable", "restart", "full-sync", "restore"
    }  # fmt: skip
    saved = json.loads(Path(result["path"]).read_text())
    assert saved["bench"] == "rebuild" and saved["rows"][0]["size_gb"] == 0.02
