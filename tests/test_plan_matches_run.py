"""The plan a `--dry-run` prints is the plan the real run that follows journals, step by step.

One function per playbook, each on the lab state its procedure is for; the journaled plans are
compared operation for operation ((target, command), `Plan.key()`), reasons excluded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from redis_ha import inventory
from redis_ha.conn import client
from redis_ha.lab import partition, scenarios
from redis_ha.lab.cluster import Lab
from tests.conftest import run_invoke

pytestmark = pytest.mark.lab


def journaled_plans(path: Path) -> dict[tuple[str, bool], list[tuple[str, str]]]:
    """(step, undo) -> the (target, command) pairs of the plan journaled in run journal `path`."""
    out: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    for line in path.read_text().splitlines():
        rec: dict[str, Any] = json.loads(line)
        if rec.get("event") != "plan":
            continue
        assert "plan" in rec, f"{path.name}: step {rec.get('step')} has no plan: {rec}"
        ops = [(o["target"], o["command"]) for o in rec["plan"]["ops"]]
        out[(rec["step"], bool(rec.get("undo")))] = ops
    return out


def test_split_brain_dry_run_is_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolated old primary taking writes: dry run, then recover --yes; same plans, no loss."""
    jdir = tmp_path / "journal"
    monkeypatch.setenv("REDIS_HA_JOURNAL_DIR", str(jdir))
    lab = Lab(inventory.load(partition.write_partitionable_inventory(tmp_path / "lab")))
    inv = lab.inv
    try:
        lab.up(timeout=60)
        old = lab.current_primary()
        writer = scenarios.Writer(inv, old).start()  # a client that still reaches the old primary
        try:
            time.sleep(0.3)
            _, new = scenarios.partition_primary(lab, old)  # old still says it is primary
            time.sleep(1)
        finally:
            acked = writer.stop()
        assert acked, "the isolated primary acknowledged no write"

        dry = run_invoke("splitbrain.recover", "--dry-run", inventory=inv.path, timeout=120)
        assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
        real = run_invoke("splitbrain.recover", "--yes", inventory=inv.path, timeout=180)
        assert real.returncode == 0, real.stdout[-3000:] + real.stderr[-2000:]

        runs = sorted(p for p in jdir.glob("*-split-brain*.jsonl"))
        assert len(runs) == 2, runs
        planned, applied = journaled_plans(runs[0]), journaled_plans(runs[1])
        assert list(planned) == list(applied)
        for step in planned:
            assert planned[step] == applied[step], step
        # The plans are about this split: the old primary fenced, salvaged into and demoted.
        assert ("fence", False) in planned and planned[("fence", False)] == [
            (old.name, "CLIENT PAUSE 120000 WRITE")
        ]
        host, port = inv.node(new).announced
        assert (old.name, f"REPLICAOF {host} {port}") in planned[("demote", False)]

        # Every write the isolated primary acknowledged is on the authoritative primary.
        c = client(inv, inv.node(new), timeout=5)
        try:
            missing = [
                k
                for i in range(0, len(acked), 500)
                for k, v in zip(acked[i : i + 500], c.mget(acked[i : i + 500]), strict=True)
                if v is None
            ]
        finally:
            c.close()
        assert missing == [], f"{len(missing)} of {len(acked)} acknowledged writes lost"
    finally:
        partition.heal(lab)
        lab.down()
        assert partition.proxy_pid(lab) is None
