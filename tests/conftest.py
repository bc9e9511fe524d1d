"""Shared fixtures: one real lab per test session, repaired after tests that break it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_ha import inventory
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture(scope="session")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A real 3+3 cluster (+ the legacy single instance) on free ports, for the whole session."""
    path = write_lab_inventory(tmp_path_factory.mktemp("lab"))
    lab = Lab(inventory.load(path))
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        lab.down()


@pytest.fixture
def lab(lab_session: Lab) -> Iterator[Lab]:
    """The shared lab, healthy at the start of the test and repaired after it."""
    lab_session.up(timeout=60)
    yield lab_session
    try:
        lab_session.up(timeout=30)
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
