"""The railway backend against a stand-in Railway CLI 4.61 (tests/railway_standin.py) whose
services are real local redis-server processes: the exact argv of every operation, and the
refusals (a failing CLI, an unknown service, no token) in one line with nothing half done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_ha import appconfig, inventory
from redis_ha.conn import client
from redis_ha.control import ControlError
from redis_ha.lab.ports import lab_inventory_dict

from . import railway_standin
from .conftest import run_invoke
from .test_control_contract import Rig, railway_rig

pytestmark = pytest.mark.lab

SCOPE_A = ["--service", "svc-redis-1", "--environment", "staging"]
SCOPE_B = ["--service", "svc-redis-2", "--environment", "staging"]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with railway_rig(tmp_path, monkeypatch) as r:
        yield r


def _state(tmp_path: Path) -> Path:
    return tmp_path / "bin"


def _argvs(tmp_path: Path, since: int = 0) -> list[list[str]]:
    return [c["argv"] for c in railway_standin.calls(_state(tmp_path))[since:]]


def _vars(tmp_path: Path) -> dict[str, dict[str, str]]:
    return json.loads((_state(tmp_path) / "vars.json").read_text())


def test_every_operation_runs_exactly_these_commands(rig: Rig, tmp_path: Path) -> None:
    ctl, a, b = rig.ctl, rig.a, rig.b
    ctl.start(a, safe=False)
    ctl.start(b, replicaof=a, overrides={"replica-priority": "0"})
    ctl.restart(b)  # no new arguments: a restart keeps the deployment's variables
    ctl.log_tail(b, 3)
    ctl.stop(b)
    status = ["service", "status", *SCOPE_B, "--json"]
    start_b = [
        ["service", "status", *SCOPE_B, "--json"],
        ["variable", "set", "REDIS_HA_ARGS", "--stdin", *SCOPE_B, "--skip-deploys"],
        ["variable", "set", "REDIS_HA_BOOTSTRAP", "--stdin", *SCOPE_B, "--skip-deploys"],
        ["redeploy", *SCOPE_B, "--yes"],
        ["variable", "set", "REDIS_HA_ARGS", "--stdin", *SCOPE_B, "--skip-deploys"],
        ["variable", "set", "REDIS_HA_BOOTSTRAP", "--stdin", *SCOPE_B, "--skip-deploys"],
    ]
    start_a = [[w.replace("svc-redis-2", "svc-redis-1") for w in argv] for argv in start_b]
    assert _argvs(tmp_path) == [
        *start_a,
        *start_b,
        status,
        ["restart", *SCOPE_B, "--yes"],
        ["logs", *SCOPE_B, "--deployment", "--lines", "3", "--json"],
        status,
        ["down", *SCOPE_B, "--yes"],
        status,
    ]
    stdins = [c["stdin"] for c in railway_standin.calls(_state(tmp_path)) if c["stdin"]]
    host, port = a.announced
    assert stdins == [
        "\n",  # a: no extra arguments,
        "1\n",  # started as configured (safe=False),
        "\n",  # then both variables back to a plain safe start
        "\n",
        f"--replicaof {host} {port} --replica-priority 0\n",  # b: from its first instant,
        "1\n",  # as configured: this inventory does not start through the wrapper
        "\n",
        "\n",
    ]
    assert all(c["token"] for c in railway_standin.calls(_state(tmp_path)))


def test_a_failing_redeploy_is_one_line_without_the_token_and_leaves_no_variables(
    rig: Rig, tmp_path: Path
) -> None:
    (_state(tmp_path) / "fail-redeploy").touch()
    with pytest.raises(ControlError) as e:
        rig.ctl.start(rig.b, replicaof=rig.a)
    msg = str(e.value)
    assert msg.startswith("redis-2: `railway redeploy --service svc-redis-2 --environment "), msg
    assert "failed (exit 1)" in msg and "\n" not in msg
    assert "project-token-123" not in msg and "$RAILWAY_TOKEN" in msg
    assert _vars(tmp_path)["svc-redis-2"] == {"REDIS_HA_ARGS": "", "REDIS_HA_BOOTSTRAP": ""}
    assert not rig.ctl.is_running(rig.b)


def test_unknown_service_and_missing_token_are_one_line(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = lab_inventory_dict(tmp_path / "other", single=False, min_replicas_to_write=0)
    d["control"] = {"backend": "railway", "environment": "staging"}
    d["nodes"][0]["control"] = {"service": "nope"}
    inv = inventory.from_dict(d, tmp_path / "other.yaml")
    ctl = type(rig.ctl)(inv)
    with pytest.raises(
        ControlError,
        match=r"^redis-1: `railway service status --service nope .*"
        r"failed \(exit 1\): Service 'nope' not found$",
    ):
        ctl.stop(inv.nodes[0])
    monkeypatch.delenv("RAILWAY_TOKEN")
    with pytest.raises(ControlError, match=r"Unauthorized. Please login with `railway login`$"):
        rig.ctl.start(rig.a)
    assert not any(argv[0] == "redeploy" for argv in _argvs(tmp_path))


def test_procedure_with_an_unknown_service_stops_in_one_line(rig: Rig, tmp_path: Path) -> None:
    """Through the CLI: replica.rebuild's preflight asks the backend (node.controllable)."""
    ctl, a, b = rig.ctl, rig.a, rig.b
    ctl.start(a, safe=False)
    ctl.start(b, replicaof=a)
    path = Path(rig.inv.path)
    text = path.read_text().replace("service: svc-redis-2", "service: svc-gone")
    path.write_text(text)
    before = client(rig.inv, b).info("server")["run_id"]
    r = run_invoke("replica.rebuild", "--node", "redis-2", "--force", "--yes", inventory=path)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out, out[-2000:]
    line = "guard node.controllable: redis-2: `railway service status --service svc-gone"
    assert line in out and "Service 'svc-gone' not found" in out, out[-2000:]
    assert "REFUSED" in out, out[-2000:]
    assert client(rig.inv, b).info("server")["run_id"] == before


def test_app_config_backend_takes_the_environment_and_reads_json(rig: Rig, tmp_path: Path) -> None:
    d = lab_inventory_dict(tmp_path / "app")
    d["app"] = {"config_backend": "railway", "service": "svc-redis-3", "environment": "staging"}
    inv = inventory.from_dict(d, tmp_path / "app.yaml")
    backend = appconfig.backend_for(inv)
    since = len(_argvs(tmp_path))
    saved = backend.apply({"REDIS_URL": "redis://x"}, tmp_path / "journal")
    assert backend.read() == {"REDIS_URL": "redis://x"}
    scope = ["--service", "svc-redis-3", "--environment", "staging"]
    assert _argvs(tmp_path, since) == [
        ["variable", "list", *scope, "--json"],
        ["variable", "set", "REDIS_URL", "--stdin", *scope, "--skip-deploys"],
        ["variable", "list", *scope, "--json"],
    ]
    assert saved.exists()
