"""App config backends: Railway against a stand-in `railway` executable, manual, mode logic."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from redis_ha import appconfig, inventory
from redis_ha import view as viewmod
from redis_ha.actions import rollback
from redis_ha.actions.registry import Context
from redis_ha.appconfig import AppConfigError
from redis_ha.appconfig.manual import ManualBackend
from redis_ha.appconfig.railway import RailwayBackend
from redis_ha.errors import InventoryError
from redis_ha.facts import ClusterFacts, NodeFacts, SentinelFacts
from redis_ha.journal import Journal
from redis_ha.lab.ports import lab_inventory_dict

SECRET = "s3cr3t-pw"

# A stand-in for the Railway CLI 4.x: keeps the service's variables in a JSON file, records every
# call (argv and stdin) and fails `redeploy` when the file `fail-redeploy` exists.
STAND_IN = r"""#!PYTHON
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
state_p, log_p = os.path.join(here, "vars.json"), os.path.join(here, "calls.jsonl")
args = sys.argv[1:]
stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(log_p, "a") as f:
    f.write(json.dumps({"argv": args, "stdin": stdin}) + "\n")
state = json.load(open(state_p))
svc = args[args.index("--service") + 1]
vars_ = state.setdefault(svc, {})
if args[:2] == ["variable", "list"]:
    assert "--json" in args
    print(json.dumps(vars_))
elif args[:2] == ["variable", "set"]:
    assert "--stdin" in args and "--skip-deploys" in args
    vars_[args[2]] = stdin.rstrip("\n")
elif args[:2] == ["variable", "delete"]:
    if args[2] not in vars_:
        sys.exit("Variable not found")
    del vars_[args[2]]
elif args[0] == "redeploy":
    assert "--yes" in args
    if os.path.exists(os.path.join(here, "fail-redeploy")):
        sys.exit("Error: Deployment failed: build error")
    state.setdefault("redeploys", []).append(svc)
else:
    sys.exit("unknown command")
json.dump(state, open(state_p, "w"))
"""

SENTINEL_VARS = {
    "REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2:26379",
    "REDIS_SENTINEL_MASTER": "mymaster",
    "REDIS_PASSWORD": SECRET,
    "OTHER": "kept",
}


@pytest.fixture
def railway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    exe = d / "railway"
    exe.write_text(STAND_IN.replace("#!PYTHON", f"#!{sys.executable}"))
    exe.chmod(0o755)
    (d / "vars.json").write_text(json.dumps({"web": dict(SENTINEL_VARS)}))
    monkeypatch.setenv("PATH", f"{d}:{__import__('os').environ['PATH']}")
    return d


def _calls(d: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (d / "calls.jsonl").read_text().splitlines()]


def _vars(d: Path) -> dict[str, Any]:
    return json.loads((d / "vars.json").read_text())


def _inv(tmp_path: Path, **app: Any) -> inventory.Inventory:
    data = lab_inventory_dict(tmp_path)
    data["app"] = app
    return inventory.from_dict(data, tmp_path / "inventory.yaml")


def _view(inv: inventory.Inventory) -> viewmod.View:
    """A view of a cluster that does not answer: the app-config plans need only the inventory."""
    nodes = [NodeFacts(n.name, n.address, False, "down") for n in inv.nodes]
    sentinels = [SentinelFacts(s.name, s.address, False, "down") for s in inv.sentinels]
    return viewmod.of(inv, ClusterFacts(str(inv.path), inv.master_name, 0.0, 0, nodes, sentinels))


def test_railway_switch_and_restore(railway: Path, tmp_path: Path) -> None:
    b = RailwayBackend("web")
    changes = {
        "REDIS_URL": "${{legacy.REDIS_URL}}",
        "REDIS_SENTINELS": None,
        "REDIS_SENTINEL_MASTER": None,
    }
    saved = b.apply(changes, tmp_path / "journal")
    now = _vars(railway)["web"]
    assert now == {"REDIS_PASSWORD": SECRET, "OTHER": "kept", "REDIS_URL": "${{legacy.REDIS_URL}}"}
    assert appconfig.mode_of(b.read() or {}) == appconfig.SINGLE
    # The backup holds what was replaced, privately.
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    b.restore(saved)
    assert _vars(railway)["web"] == SENTINEL_VARS
    b.redeploy()
    assert _vars(railway)["redeploys"] == ["web"]
    # Values travel on stdin only: no command line carries one.
    argvs = [" ".join(c["argv"]) for c in _calls(railway)]
    assert not any("legacy.REDIS_URL" in a or "10.0.0.1" in a for a in argvs)
    assert "variable set REDIS_URL --stdin --service web --skip-deploys" in argvs
    assert "variable delete REDIS_SENTINELS --service web" in argvs
    assert "redeploy --service web --yes" in argvs


def test_railway_errors_are_one_line(railway: Path) -> None:
    (railway / "fail-redeploy").touch()
    with pytest.raises(
        AppConfigError,
        match=r"`railway redeploy --service web --yes` failed "
        r"\(exit 1\): Error: Deployment failed: build error",
    ):
        RailwayBackend("web").redeploy()
    with pytest.raises(AppConfigError, match="not on PATH"):
        RailwayBackend("web", binary="railway-missing-xyz").read()


def test_redeploy_failure_restores_previous_config(railway: Path, tmp_path: Path) -> None:
    """A failure half-way leaves the app on its old, working configuration, and says so."""
    inv = _inv(tmp_path, config_backend="railway", service="web", redis_url="${{legacy.REDIS_URL}}")
    view = _view(inv)
    (tmp_path / "journal").mkdir()
    jr = Journal(tmp_path / "journal" / "run.jsonl")  # backups go beside the run's journal
    ctx = Context(inv=inv, log=lambda s: None, journal=jr)
    rollback.set_mode(ctx, rollback.plan_set_mode(view, "single"))
    assert "REDIS_SENTINELS" not in _vars(railway)["web"]
    assert Path(ctx.state["app_backup"]).parent == tmp_path / "journal"
    (railway / "fail-redeploy").touch()
    with pytest.raises(AppConfigError) as e:
        rollback.redeploy(ctx, rollback.plan_redeploy(view))
    msg = str(e.value)
    assert "redeploy failed" in msg and "previous app configuration restored" in msg
    assert _vars(railway)["web"] == SENTINEL_VARS
    assert SECRET not in msg
    # The runner's undo after this plans nothing: a no-op, not a second change.
    undo = rollback.plan_restore(view, ctx.state["app_backup"], ctx.state["app_restored"])
    assert undo.is_noop and "already restored" in (undo.noop or "")
    assert "already restored" in rollback.restore_config(ctx, undo).message


def test_manual_backend_refuses_yes_and_guides_without(tmp_path: Path) -> None:
    with pytest.raises(AppConfigError, match="--yes cannot be used"):
        ManualBackend(yes=True).apply({"A": "1"}, tmp_path)
    said: list[str] = []
    b = ManualBackend(confirm=lambda q: True, out=said.append)
    saved = b.apply(
        {"REDIS_URL": "redis://h:1/0", "REDIS_SENTINELS": None},
        tmp_path,
        previous={"REDIS_SENTINELS": "h:2", "REDIS_URL": None},
    )
    shown = "\n".join(said)
    assert "  set    REDIS_URL=redis://h:1/0" in shown
    assert "  remove REDIS_SENTINELS" in shown
    assert appconfig.read_backup(saved) == {"REDIS_SENTINELS": "h:2", "REDIS_URL": None}
    with pytest.raises(AppConfigError, match="did not confirm"):
        ManualBackend(confirm=lambda q: False, out=said.append).redeploy()


def test_target_vars_and_url_without_password(tmp_path: Path) -> None:
    inv = _inv(tmp_path, config_backend="envfile", env_file="app.env")
    single = appconfig.target_vars(inv, appconfig.SINGLE)
    assert single["REDIS_SENTINELS"] is None and single["REDIS_SENTINEL_MASTER"] is None
    assert single["REDIS_URL"] == f"redis://127.0.0.1:{inv.single.port}/0"  # type: ignore[union-attr]
    back = appconfig.target_vars(inv, appconfig.SENTINEL)
    assert back["REDIS_URL"] is None
    assert back["REDIS_SENTINELS"] == ",".join(s.address for s in inv.sentinels)
    bad = _inv(tmp_path, config_backend="envfile", redis_url="redis://:pw@h:1/0")
    with pytest.raises(InventoryError, match="carries a password"):
        appconfig.single_url(bad)
    assert appconfig.env_file(inv) == (tmp_path / "app.env").resolve()


def test_unwritable_backup_folder_is_one_readable_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(AppConfigError, match="cannot save the app config backup"):
        appconfig.write_backup(tmp_path / "a-file" / "journal", "manual", {"REDIS_URL": "x"}, [])


def test_app_plans_name_variables_and_commands_never_secrets(railway: Path, tmp_path: Path) -> None:
    """set_mode lists what it writes, redeploy what it runs, restore what it puts back: no value
    of the backup (it may hold a password) and no inventory secret appears in any plan."""
    inv = _inv(tmp_path, config_backend="railway", service="web", redis_url="${{legacy.REDIS_URL}}")
    view = _view(inv)
    p = rollback.plan_set_mode(view, "single")
    assert [o.command for o in p.ops] == [
        "save the variables it replaces",
        "set REDIS_URL=${{legacy.REDIS_URL}}",
        "unset REDIS_SENTINELS",
        "unset REDIS_SENTINEL_MASTER",
    ]
    assert {o.target for o in p.ops} == {"Railway service 'web'"}
    r = rollback.plan_redeploy(view)
    assert r.key()[0] == ("Railway service 'web'", "railway redeploy --service web --yes")
    assert "put the saved configuration back" in r.ops[-1].command
    saved = RailwayBackend("web").apply(p.params["changes"], tmp_path / "journal")
    back = rollback.plan_restore(view, str(saved))
    shown = "\n".join(back.lines())
    assert "set REDIS_PASSWORD" not in shown  # not a variable the switch replaced
    assert "set REDIS_SENTINELS (saved value)" in shown and "unset REDIS_URL" in shown
    assert SECRET not in shown and "10.0.0.1" not in shown
    assert back.key()[-1] == ("Railway service 'web'", "railway redeploy --service web --yes")
    assert rollback.plan_restore(view).noop == (
        "nothing to restore: the app configuration was not changed"
    )


def test_shown_masks_url_passwords_and_inventory_secrets() -> None:
    said = appconfig.shown(
        {"REDIS_URL": "redis://:hunter2@h:1/0", "X": "a-topsecret-b", "Y": None}, ["topsecret"]
    )
    assert said == ["set REDIS_URL=redis://:***@h:1/0", "set X=a-***-b", "unset Y"]


def test_envfile_redeploy_plan_names_the_restart_command(tmp_path: Path) -> None:
    inv = _inv(tmp_path, env_file=str(tmp_path / "app.env"), restart_cmd="systemctl restart web")
    ops = rollback.plan_redeploy(_view(inv)).key()
    assert ops[0] == (f"env file {tmp_path / 'app.env'}", "parse the file")
    assert ops[1] == ("app", "run systemctl restart web")
    no_cmd = _inv(tmp_path, env_file=str(tmp_path / "app.env"))
    assert len(rollback.plan_redeploy(_view(no_cmd)).ops) == 2  # parse, and restore on failure


def test_a_run_saves_what_it_replaced_once(tmp_path: Path) -> None:
    """A backend without a file keyed by the run: a resumed switch keeps the first backup."""
    b = ManualBackend(confirm=lambda q: True, out=lambda s: None)
    first = b.apply({"REDIS_URL": "u"}, tmp_path, previous={"REDIS_URL": None}, key="run-1")
    again = b.apply({"REDIS_URL": "u"}, tmp_path, previous={"REDIS_URL": "u"}, key="run-1")
    assert again == first and first.name == "app-config-manual-run-1.json"
    assert appconfig.read_backup(first) == {"REDIS_URL": None}
