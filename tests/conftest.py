"""Shared fixtures: one real lab per test session, repaired after tests that break it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
import redis

from redis_ha import conn, inventory
from redis_ha.actions.node import RUNTIME_SETTINGS
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

ROOT = Path(__file__).resolve().parent.parent

# Journals written by tasks under test go to a throwaway folder, never into the repository's
# journal/ (a test may set its own REDIS_HA_JOURNAL_DIR on top of this).
os.environ.setdefault("REDIS_HA_JOURNAL_DIR", tempfile.mkdtemp(prefix="redis-ha-test-journal-"))


def run_invoke(
    *args: str,
    inventory: Path | str | None = None,
    timeout: float = 120,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` as an operator would (no terminal), from the repository root."""
    argv = [sys.executable, "-m", "invoke", *args]
    if inventory is not None:
        argv += ["--inventory", str(inventory)]
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env=full_env,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def spawn_invoke(
    *args: str,
    inventory: Path | str,
    env: dict[str, str] | None = None,
    rows: int = 60,
    timeout: float = 30,
) -> pexpect.spawn:
    """Run `invoke ARGS` at a real terminal (pexpect), 160 columns wide, from the repo root."""
    full_env = {**os.environ, "COLUMNS": "160", "LINES": str(rows), "NO_COLOR": "1", **(env or {})}
    return pexpect.spawn(
        sys.executable,
        ["-m", "invoke", *args, "--inventory", str(inventory)],
        cwd=str(ROOT),
        env=full_env,
        encoding="utf-8",
        timeout=timeout,
        dimensions=(rows, 160),
    )


@pytest.fixture(scope="session")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A real 3+3 cluster (+ the legacy single instance) on free ports, for the whole session."""
    path = write_lab_inventory(tmp_path_factory.mktemp("lab"))
    lab = Lab(inventory.load(path))
    try:
        lab.up(timeout=60)
        baseline(lab)
        yield lab
    finally:
        lab.down()


_BASELINE: dict[str, dict[str, str]] = {}


def baseline(lab: Lab) -> dict[str, dict[str, str]]:
    """Every run-time setting a procedure may change, as each node had it when the lab came up."""
    if not _BASELINE:
        for ep in lab.inv.nodes:
            c = conn.client(lab.inv, ep, timeout=1.0)
            try:
                got = c.config_get(*RUNTIME_SETTINGS)
            finally:
                c.close()
            _BASELINE[ep.name] = {k: str(got[k]) for k in RUNTIME_SETTINGS if k in got}
    return _BASELINE


def reset_settings(lab: Lab) -> None:
    """Undo what a test may leave on live nodes: changed settings, paused writes, the lock key.

    Processes and roles are repaired by `Lab.up`; this puts back every setting a procedure may
    change (`actions.node.RUNTIME_SETTINGS`, not a hand-kept list) to its value at the start, so
    no test inherits another's (e.g. replica-priority 0 from an interrupted rebuild).
    """
    want = baseline(lab)
    for ep in lab.inv.nodes:
        c = conn.client(lab.inv, ep, timeout=1.0)
        try:
            c.execute_command("CLIENT", "UNPAUSE")
            for k, v in want.get(ep.name, {}).items():
                c.config_set(k, v)
            if c.info("replication").get("role") == "master":
                c.delete(*[k for k in c.scan_iter("redis-ha-runbooks:*")] or ["-"])
        except redis.RedisError:
            pass  # down or frozen: Lab.up deals with it
        finally:
            c.close()


@pytest.fixture
def lab(lab_session: Lab) -> Iterator[Lab]:
    """The shared lab, healthy at the start of the test and repaired after it."""
    lab_session.up(timeout=60)
    yield lab_session
    try:
        lab_session.up(timeout=30)
        reset_settings(lab_session)
    except Exception:
        # A test left it beyond repair: start over from nothing.
        lab_session.down()
        lab_session.up(timeout=60)


@pytest.fixture
def lab_inv(lab: Lab) -> Inventory:
    return lab.inv


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab of its own, for tests that need production timings or a pristine start."""
    lab = Lab(inventory.load(write_lab_inventory(tmp_path)))
    try:
        yield lab
    finally:
        lab.down()
