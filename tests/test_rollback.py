"""`invoke rollback` / `rollback.undo` against the real lab, with the app simulator following the
dotenv file. Each test works on its own copy of the lab inventory whose app env file and journal
live in tmp_path, so the shared lab's own app.env is never touched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from redis_ha import appconfig, inventory
from redis_ha import view as viewmod
from redis_ha.appconfig import envfile
from redis_ha.inventory import Inventory
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports
from redis_ha.lab.traffic import Traffic
from tests.conftest import run_invoke

pytestmark = pytest.mark.lab


def _derived(
    lab: Lab, tmp_path: Path, *, app: dict[str, Any] | None = None, **top: Any
) -> tuple[Inventory, Path]:
    """A copy of the shared lab's inventory with its own app env file (written, Sentinel mode)."""
    data = yaml.safe_load(lab.inv.path.read_text())
    data["app"] = {
        "config_backend": "envfile",
        "env_file": str(tmp_path / "app.env"),
        **(app or {}),
    }
    data.update(top)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    inv = inventory.load(path)
    env = appconfig.write_lab_env(inv)  # None for other backends
    return inv, env or tmp_path / "app.env"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"REDIS_HA_JOURNAL_DIR": str(tmp_path / "journal")}


def _primary(lab: Lab) -> redis.Redis:
    p = lab.current_primary()
    return redis.Redis(host=p.host, port=p.port, password=lab.inv.password(), decode_responses=True)


def _single(inv: Inventory) -> redis.Redis:
    s = inv.single
    assert s is not None
    return redis.Redis(host=s.host, port=s.port, password=inv.password(), decode_responses=True)


def test_rollback_and_undo_with_the_simulator(lab: Lab, tmp_path: Path) -> None:
    inv, env_path = _derived(lab, tmp_path)
    before_primary = lab.current_primary().name
    # Sessions users have before the rollback: they must survive it (warm-up).
    p = _primary(lab)
    tag = tmp_path.name[-8:]
    for i in range(200):
        p.set(f"session:rb-{tag}:{i}", f"user-{i}", ex=600)
    p.close()

    t = Traffic(
        inv,
        rate=200,
        workers=2,
        keys=200,
        env_file=env_path,
        settle_s=1,
        prefix=f"session:sim-{tag}:",
    )
    t.start()
    try:
        time.sleep(1.0)
        r = run_invoke("rollback", "--yes", inventory=inv.path, env=_env(tmp_path), timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout
        assert "budget" in out and "left" in out  # the 30-minute clock is on screen
        values = envfile.read(env_path)
        assert appconfig.mode_of(values) == appconfig.SINGLE
        assert "REDIS_SENTINELS" not in values and "REDIS_PASSWORD_FILE" in values
        # The simulator followed the file to the single instance.
        deadline = time.monotonic() + 10
        while t.cfg.mode != "url" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert t.cfg.mode == "url", t.config_changes
        # Sessions written before the rollback are readable on the single instance.
        s = _single(inv)
        assert all(s.get(f"session:rb-{tag}:{i}") == f"user-{i}" for i in range(200))
        assert 0 < s.ttl(f"session:rb-{tag}:7") <= 600
        s.set(f"session:during-{tag}", "new login", ex=600)  # a user logs in meanwhile
        s.close()
        # The Sentinel cluster is still up, untouched.
        assert lab.wait_ready(10).healthy
        assert lab.current_primary().name == before_primary
        # The report: every step's duration against the budget.
        reports = list((tmp_path / "journal").glob("*-rollback-report.md"))
        assert len(reports) == 1
        text = reports[0].read_text()
        for step in ("preflight", "warm-sessions", "switch-config", "redeploy", "validate"):
            assert f"| {step} | ok |" in text
        assert "of the 1800 s budget (within budget)" in text
        # The timeline is the journal's: each step's own message, in order.
        assert "starts rollback" in text and "warm-sessions ok: copied" in text
        assert text.index("switch-config ok") < text.index("validate ok: probe session")
        assert "invoke rollback.undo" in text
        assert (inv.password() or "no-password") not in text

        r = run_invoke(
            "rollback.undo", "--yes", inventory=inv.path, env=_env(tmp_path), timeout=180
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert appconfig.mode_of(envfile.read(env_path)) == appconfig.SENTINEL
        deadline = time.monotonic() + 10
        while t.cfg.mode != "sentinel" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert t.cfg.mode == "sentinel", t.config_changes
        p = _primary(lab)
        assert p.get(f"session:during-{tag}") == "new login"  # copied back by the undo
        p.close()
        assert list((tmp_path / "journal").glob("*-rollback-undo-report.md"))
    finally:
        t.stop()


def test_preflight_refuses_single_down_and_wrong_password(lab: Lab, tmp_path: Path) -> None:
    # Single instance down: an address where nothing listens.
    port = free_ports(1)[0]
    d1 = tmp_path / "down"
    d1.mkdir()
    inv, env_path = _derived(lab, d1, single={"name": "legacy", "host": "127.0.0.1", "port": port})
    original = env_path.read_bytes()
    r = run_invoke("rollback", "--yes", inventory=inv.path, env=_env(d1))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "connection refused" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert env_path.read_bytes() == original
    assert not list(d1.glob("app.env.bak*"))

    # The single instance refuses our password (its own was changed): refused in preflight.
    d2 = tmp_path / "auth"
    d2.mkdir()
    inv, env_path = _derived(lab, d2)
    original = env_path.read_bytes()
    pw = inv.password()
    s = _single(inv)
    s.config_set("requirepass", "a-different-password")
    try:
        r = run_invoke("rollback", "--yes", inventory=inv.path, env=_env(d2))
    finally:
        s = redis.Redis(
            host=s.connection_pool.connection_kwargs["host"],
            port=s.connection_pool.connection_kwargs["port"],
            password="a-different-password",
        )
        s.config_set("requirepass", pw or "")
        s.close()
    assert r.returncode == 2, r.stdout + r.stderr
    assert "rollback.single_ready" in r.stdout and "authentication failed" in r.stdout
    assert env_path.read_bytes() == original

    # A wrong password everywhere: one readable line before anything runs, nothing changed.
    d3 = tmp_path / "everywhere"
    d3.mkdir()
    inv, env_path = _derived(lab, d3, auth={"password_env": "RB_TEST_PW"})
    original = env_path.read_bytes()
    r = run_invoke("rollback", "--yes", inventory=inv.path, env={**_env(d3), "RB_TEST_PW": "wrong"})
    assert r.returncode != 0
    assert "authentication failed" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert env_path.read_bytes() == original


def test_failed_redeploy_restores_the_env_file(lab: Lab, tmp_path: Path) -> None:
    inv, env_path = _derived(lab, tmp_path, app={"restart_cmd": "false"})
    # Extra content the rewrite must keep byte for byte, and restore exactly.
    env_path.write_text("# app config\nexport APP='web'  # name\n" + env_path.read_text())
    original = env_path.read_bytes()
    s = _single(inv)
    keys_before = s.dbsize()

    r = run_invoke("rollback", "--dry-run", inventory=inv.path, env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "would:" in r.stdout
    assert env_path.read_bytes() == original and s.dbsize() == keys_before

    r = run_invoke("rollback", "--yes", "--no-warm", inventory=inv.path, env=_env(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "redeploy failed" in r.stdout and "previous app configuration restored" in r.stdout
    assert env_path.read_bytes() == original
    assert s.dbsize() == keys_before  # --no-warm copied nothing
    s.close()


def test_rollback_through_railway_stand_in(lab: Lab, tmp_path: Path) -> None:
    """The Railway backend end to end: variables via stdin, one redeploy, then the way back."""
    import json
    import sys

    from tests.test_appconfig import STAND_IN

    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "railway"
    exe.write_text(STAND_IN.replace("#!PYTHON", f"#!{sys.executable}"))
    exe.chmod(0o755)
    sentinel_vars = {
        k: v for k, v in appconfig.target_vars(lab.inv, appconfig.SENTINEL).items() if v
    }
    (bindir / "vars.json").write_text(json.dumps({"web": {**sentinel_vars, "OTHER": "1"}}))
    inv, _ = _derived(
        lab, tmp_path, app={"config_backend": "railway", "service": "web", "railway_bin": str(exe)}
    )
    r = run_invoke("rollback", "--yes", "--no-warm", inventory=inv.path, env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    state = json.loads((bindir / "vars.json").read_text())
    assert state["web"] == {"OTHER": "1", "REDIS_URL": appconfig.single_url(inv)}
    assert state["redeploys"] == ["web"]
    calls = [json.loads(x)["argv"] for x in (bindir / "calls.jsonl").read_text().splitlines()]
    assert all(inv.password() not in " ".join(a) for a in calls)
    assert ["redeploy", "--service", "web", "--yes"] in calls

    r = run_invoke("rollback.undo", "--yes", inventory=inv.path, env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    state = json.loads((bindir / "vars.json").read_text())
    assert state["web"] == {**sentinel_vars, "OTHER": "1"}
    assert state["redeploys"] == ["web", "web"]


def test_app_health_failure_restores_the_config(lab: Lab, tmp_path: Path) -> None:
    """Validation includes the app's health URL (loopback here); a failing app is rolled back."""
    import http.server
    import threading

    from redis_ha.actions import rollback
    from redis_ha.actions.registry import Context
    from redis_ha.appconfig import AppConfigError
    from redis_ha.journal import Journal

    status = {"code": 503}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_port}/health"
        inv, env_path = _derived(lab, tmp_path, app={"health_url": url})
        original = env_path.read_bytes()
        view = viewmod.take(inv)
        ctx = Context(inv=inv, log=lambda s: None, journal=Journal(tmp_path / "run.jsonl"))
        rollback.set_mode(ctx, rollback.plan_set_mode(view, "single"))
        check = rollback.plan_validate(view, "single", wait_s=0.5)
        assert ("app", f"GET {url}") in check.key()
        with pytest.raises(AppConfigError, match=r"app health check failed: .* -> 503.*restored"):
            rollback.validate(ctx, check)
        assert env_path.read_bytes() == original
        assert ctx.state["app_restored"] is True

        status["code"] = 200
        ctx.state.clear()
        rollback.set_mode(ctx, rollback.plan_set_mode(view, "single"))
        out = rollback.validate(ctx, rollback.plan_validate(view, "single", wait_s=5))
        assert out.ok and "-> 200" in out.message
    finally:
        srv.shutdown()
        srv.server_close()


def test_manual_backend_refuses_yes_in_preflight(lab: Lab, tmp_path: Path) -> None:
    inv, _ = _derived(lab, tmp_path, app={"config_backend": "manual"})
    r = run_invoke("rollback", "--yes", inventory=inv.path, env=_env(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--yes cannot be used" in r.stdout


def test_preflight_checks_memory_headroom(lab: Lab, tmp_path: Path) -> None:
    from redis_ha.actions import rollback

    inv, _ = _derived(lab, tmp_path)
    view = viewmod.take(inv)
    ok = rollback.single_ready(view)
    assert ok.ok and "auth OK" in ok.message
    # The sessions to copy count against the headroom, unless the warm-up is skipped.
    assert ok.data["needed"] > rollback.single_ready(view, no_warm=True).data["needed"]
    # Ask for more headroom than the machine has: refused, saying how much is free.
    refused = rollback.single_ready(view, min_free_mb=10**9)
    assert not refused.ok and "MB free" in refused.message and "needed" in refused.message
