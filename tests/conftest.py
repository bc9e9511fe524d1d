"""Shared fixtures: one real lab per test session, repaired after tests that break it.

The lab runs the server chosen by `--server redis|valkey|FOLDER` (or $REDIS_HA_SERVER /
$REDIS_HA_SERVER_BIN, as the lab itself reads them; lab/binaries.py). Every test that uses a lab
fixture (LAB_FIXTURES) is marked `lab` automatically, so `pytest -m "not lab"` is the fast subset;
an unmarked test that starts lab processes fails, saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
import redis

from redis_ha import conn, inventory
from redis_ha.actions.node import RUNTIME_SETTINGS
from redis_ha.errors import LabError
from redis_ha.inventory import Inventory
from redis_ha.lab import binaries
from redis_ha.lab.binaries import Binaries
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory

ROOT = Path(__file__).resolve().parent.parent

# Journals written by tasks under test go to a throwaway folder, never into the repository's
# journal/ (a test may set its own REDIS_HA_JOURNAL_DIR on top of this).
os.environ.setdefault("REDIS_HA_JOURNAL_DIR", tempfile.mkdtemp(prefix="redis-ha-test-journal-"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers inherit the controller's folder; each takes its own inside it, or the local lock
    # files (named after the cluster: every test lab is "testlab") would collide across workers.
    _worker_dir = Path(os.environ["REDIS_HA_JOURNAL_DIR"]) / os.environ["PYTEST_XDIST_WORKER"]
    _worker_dir.mkdir(parents=True, exist_ok=True)
    os.environ["REDIS_HA_JOURNAL_DIR"] = str(_worker_dir)


# Fixtures that start (or hand out) real server processes: a test using one is a lab test.
LAB_FIXTURES = frozenset(
    {"lab", "lab_session", "lab_inv", "fresh_lab", "slower_lab", "server_binaries", "binaries_of"}
)


# Files that test the tool's own parts (control backends, the Docker lab, the drills, the secret
# grep, interruptions of the tool), not how the server behaves: they run on the default server
# only (marker `one_server`), so the Valkey leg of CI repeats what depends on the server.
ONE_SERVER_FILES = frozenset(
    {
        "test_ssh_backend.py",
        "test_railway_backend.py",
        "test_docker_lab.py",
        "test_control_contract.py",
        "test_drill_scenarios.py",
        "test_secrets.py",
        "test_faults_mid_step.py",
        "test_faults_steps.py",
        "test_faults_failover.py",
        "test_faults_splitbrain.py",
        "test_faults_rollback.py",
        "test_faults_small.py",
        "test_prometheus_lab.py",
        "test_ioredis_client.py",
        "test_demo.py",
    }
)


# Files that use the Docker engine the tests start (one per machine: tests/docker_rig.py).
DOCKER_FILES = frozenset({"test_docker_lab.py", "test_control_contract.py"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server",
        default=None,
        help="server the lab tests run on: redis, valkey or a folder of binaries "
        f"(default ${binaries.ENV_SERVER}, else redis)",
    )


def pytest_configure(config: pytest.Config) -> None:
    server = config.getoption("--server")
    if server:
        os.environ[binaries.ENV_SERVER] = server  # the lab, and every invoke it runs, reads it


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    value, bins, why = _chosen()
    unavailable = pytest.mark.skip(reason=f"lab server {value!r} not available: {why}")
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
        if item.path.name in ONE_SERVER_FILES:
            item.add_marker(pytest.mark.one_server)
        # Under `-n N --dist loadgroup` a file stays on one worker (its module fixtures are
        # built once), and the files that share the one Docker engine run on the same one.
        group = "docker" if item.path.name in DOCKER_FILES else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))
        if bins is None and item.get_closest_marker("lab"):
            item.add_marker(unavailable)


def _chosen() -> tuple[str, Binaries | None, str]:
    """(setting, its binaries or None, why not) for the lab of this test session."""
    asked = binaries.choice(None, None)
    value = asked[0] if asked else "redis"
    try:
        return value, binaries.resolve(value), ""
    except LabError as e:
        return value, None, str(e)


def pytest_report_header(config: pytest.Config) -> str:
    value, bins, why = _chosen()
    if bins is None:
        return f"lab server: {value} UNAVAILABLE, every lab test will be skipped: {why}"
    return f"lab server: {bins.label} ({bins.server})"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    value, bins, why = _chosen()
    if bins is None:
        terminalreporter.write_line(
            f"LAB TESTS SKIPPED: the lab server {value!r} is not available: {why}", red=True
        )


@pytest.fixture(scope="session")
def server_binaries() -> Binaries:
    """The binaries of this session's lab server; every lab test is skipped, loudly, without."""
    value, bins, why = _chosen()
    if bins is None:
        pytest.skip(f"lab server {value!r} not available: {why}")
    return bins


@pytest.fixture
def binaries_of() -> Any:
    """`binaries_of("valkey")`: another server's binaries for a test, or a loud skip."""

    def find(value: str) -> Binaries:
        try:
            return binaries.resolve(value)
        except LabError as e:
            pytest.skip(f"server {value!r} not available: {e}")

    return find


@pytest.fixture(autouse=True)
def _lab_tests_are_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts lab processes without being a lab test would slow `-m "not lab"`."""
    if request.node.get_closest_marker("lab"):
        return

    def refuse(*_a: Any, **_k: Any) -> Binaries:
        raise AssertionError(
            f"{request.node.nodeid} starts lab processes: use a lab fixture or @pytest.mark.lab"
        )

    monkeypatch.setattr(binaries, "for_lab", refuse)


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
def lab_session(
    tmp_path_factory: pytest.TempPathFactory, server_binaries: Binaries
) -> Iterator[Lab]:
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
def fresh_lab(tmp_path: Path, server_binaries: Binaries) -> Iterator[Lab]:
    """A lab of its own, for tests that need production timings or a pristine start."""
    lab = Lab(inventory.load(write_lab_inventory(tmp_path)))
    try:
        yield lab
    finally:
        lab.down()
