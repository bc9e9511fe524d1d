"""`config.render --target`: the files each platform deploys from (pure: rendered text only), and
redis_ha.launch, the start command they all use. The compose target is also started for real:
the Docker lab's containers run it (tests/test_docker_lab.py)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from redis_ha import deploy, inventory, launch, safestart
from tests.conftest import ROOT, run_invoke

PRODUCTION = ROOT / "inventories" / "example-production.yaml"
SECRET = "pw-Zq7-never-in-a-rendered-file"


@pytest.fixture
def inv(monkeypatch: pytest.MonkeyPatch) -> inventory.Inventory:
    monkeypatch.setenv("REDIS_PASSWORD", SECRET)
    return inventory.load(PRODUCTION)


def _render(inv: inventory.Inventory, target: str, out: Path) -> dict[str, str]:
    files = deploy.render_target(inv, target, out, python=sys.executable)
    return {str(f.relative_to(out)): f.read_text() for f in files}


def _conf(text: str) -> dict[str, list[str]]:
    """Directive -> its values (a directive may repeat)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            if key == "sentinel":
                key, _, value = f"sentinel {value}".partition(" ")[2].partition(" ")
                key = f"sentinel {key}"
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("target", deploy.TARGETS)
def test_no_secret_and_stdout_logging_in_any_rendered_file(
    inv: inventory.Inventory, target: str, tmp_path: Path
) -> None:
    files = _render(inv, target, tmp_path)
    assert files
    every = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(str(p.relative_to(tmp_path)) for p in every) == sorted(files)
    for path, text in files.items():
        assert SECRET not in text, path
        assert "requirepass" not in text.replace("# requirepass", ""), path
    confs = {p: t for p, t in files.items() if p.endswith(".conf")}
    assert len(confs) == 6
    for path, text in confs.items():
        assert _conf(text)["logfile"] == ['""'], path
        assert "protected-mode no" in text, path  # the password is added at start
        assert "added at start from $REDIS_PASSWORD" in text, path


@pytest.mark.parametrize("target", deploy.TARGETS)
def test_re_rendering_is_idempotent(inv: inventory.Inventory, target: str, tmp_path: Path) -> None:
    first = _render(inv, target, tmp_path)
    again = _render(inv, target, tmp_path)
    assert first == again
    assert len(list(p for p in tmp_path.rglob("*") if p.is_file())) == len(first)


def test_railway_services_announce_private_dns_names(
    inv: inventory.Inventory, tmp_path: Path
) -> None:
    files = _render(inv, "railway", tmp_path)
    assert {p.split("/")[0] for p in files} == {n.name for n in (*inv.nodes, *inv.sentinels)}
    r2 = _conf(files["redis-2/redis.conf"])
    assert r2["replica-announce-ip"] == ["redis-2.railway.internal"]
    assert r2["replicaof"] == ["redis-1.railway.internal 6379"]
    assert r2["bind"] == ["* -::*"]  # Railway's private network may be IPv6 only
    assert "replicaof" not in _conf(files["redis-1/redis.conf"])
    s1 = _conf(files["sentinel-1/sentinel.conf"])
    assert s1["sentinel resolve-hostnames"] == ["yes"]
    assert s1["sentinel announce-hostnames"] == ["yes"]
    assert s1["sentinel announce-ip"] == ["sentinel-1.railway.internal"]
    assert s1["sentinel monitor"] == ["mymaster redis-1.railway.internal 6379 2"]
    assert s1["sentinel down-after-milliseconds"] == ["mymaster 3000"]
    df = files["sentinel-1/Dockerfile"].splitlines()
    cmd = json.loads(next(ln for ln in df if ln.startswith("CMD "))[4:])
    assert cmd[:3] == ["python", "-m", "redis_ha.launch"]
    assert cmd[cmd.index("--service") + 1] == "sentinel-1"
    assert "COPY sentinel.conf /etc/redis-ha/sentinel.conf" in df
    assert f"ARG BASE_IMAGE={deploy.DEFAULT_IMAGE}" in df
    dep = yaml.safe_load(files["redis-2/inventory.yaml"])
    assert dep["auth"] == {"password_env": "REDIS_PASSWORD"}
    assert [n["host"] for n in dep["nodes"]][0] == "redis-1.railway.internal"
    inventory.from_dict(dep, tmp_path / "inventory.yaml")  # a valid inventory for safestart


def test_compose_services_are_named_as_the_inventory_names_them(
    inv: inventory.Inventory, tmp_path: Path
) -> None:
    files = _render(inv, "compose", tmp_path)
    doc = yaml.safe_load(files["docker-compose.yaml"])
    assert list(doc["services"]) == [e.name for e in (*inv.nodes, *inv.sentinels)]
    r3 = doc["services"]["redis-3"]
    assert r3["environment"] == {
        "REDIS_PASSWORD": "${REDIS_PASSWORD:?set REDIS_PASSWORD to the cluster password}"
    }
    assert r3["networks"] == {"redis-ha": {"aliases": ["redis-3"]}}
    assert "./redis-3/redis.conf:/etc/redis-ha/redis.conf:ro" in r3["volumes"]
    for v in r3["volumes"]:  # every mounted file is one this render wrote
        assert v.split(":")[0][2:] in files
    assert _conf(files["redis-3/redis.conf"])["replica-announce-ip"] == ["redis-3"]
    s2 = _conf(files["sentinel-2/sentinel.conf"])
    assert s2["sentinel monitor"] == ["mymaster redis-1 6379 2"]
    assert s2["sentinel announce-hostnames"] == ["yes"]


def test_systemd_units_start_nodes_and_sentinels_through_launch(
    inv: inventory.Inventory, tmp_path: Path
) -> None:
    files = _render(inv, "systemd", tmp_path)
    units = sorted(p for p in files if p.endswith(".service"))
    assert len(units) == 6
    u = files["redis-ha-redis-2.service"]
    assert f"ExecStart={sys.executable} -m redis_ha.launch" in u
    assert "--template /etc/redis-ha/redis-2.conf --conf /var/lib/redis-ha/redis-2/redis.conf" in u
    assert "StateDirectory=redis-ha/redis-2" in u
    assert "EnvironmentFile=-/etc/redis-ha/password.env" in u
    assert "EnvironmentFile=-/run/redis-ha/redis-2.env" in u  # the ssh backend's start arguments
    s = files["redis-ha-sentinel-1.service"]
    assert "--service sentinel-1" in s and "/run/redis-ha/" not in s
    # systemd hosts keep the inventory's names
    assert _conf(files["redis-2.conf"])["replica-announce-ip"] == ["redis-2.railway.internal"]
    assert _conf(files["redis-2.conf"])["dir"] == ['"/var/lib/redis-ha/redis-2"']


def test_systemd_units_pass_systemd_analyze_verify(
    inv: inventory.Inventory, tmp_path: Path
) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("SYSTEMD UNITS NOT VERIFIED: systemd-analyze is not installed here")
    files = _render(inv, "systemd", tmp_path)
    units = [str(tmp_path / p) for p in sorted(files) if p.endswith(".service")]
    p = subprocess.run([tool, "verify", *units], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # and the check can fail: a unit whose command is not an absolute path
    bad = tmp_path / "redis-ha-bad.service"
    bad.write_text(
        files["redis-ha-redis-1.service"].replace(
            f"ExecStart={sys.executable}", "ExecStart=no/such"
        )
    )
    p = subprocess.run([tool, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, "systemd-analyze accepted a broken unit"


def test_unknown_target_is_one_line(tmp_path: Path) -> None:
    r = run_invoke(
        "config.render", "--target", "heroku", "--out", str(tmp_path / "o"),
        inventory=PRODUCTION, env={"REDIS_PASSWORD": SECRET},
    )  # fmt: skip
    assert r.returncode != 0
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert lines == ["error: unknown target 'heroku' (choose one of: railway, systemd, compose)"]
    assert not (tmp_path / "o").exists()


def test_config_render_target_writes_the_files(tmp_path: Path) -> None:
    r = run_invoke(
        "config.render", "--target", "compose", "--out", str(tmp_path / "o"),
        "--image", "registry.example/redis-ha:1", inventory=PRODUCTION,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    doc = yaml.safe_load((tmp_path / "o" / "docker-compose.yaml").read_text())
    assert {s["image"] for s in doc["services"].values()} == {"registry.example/redis-ha:1"}
    assert r.stdout.count("wrote ") == 8


# --- redis_ha.launch ---------------------------------------------------------------------------


@pytest.fixture
def deployed(inv: inventory.Inventory, tmp_path: Path) -> tuple[inventory.Inventory, Path]:
    out = tmp_path / "compose"
    _render(inv, "compose", out)
    return inventory.load(out / "inventory.yaml"), out


def test_launch_writes_the_password_into_a_private_config(
    deployed: tuple[inventory.Inventory, Path], tmp_path: Path
) -> None:
    dinv, out = deployed
    conf = tmp_path / "data" / "redis.conf"
    done = launch.prepare(dinv, dinv.node("redis-2"), out / "redis-2" / "redis.conf", conf)
    assert "written" in done
    text = conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert f'requirepass "{SECRET}"' in text and f'masterauth "{SECRET}"' in text
    assert text.startswith((out / "redis-2" / "redis.conf").read_text())
    sconf = tmp_path / "data" / "sentinel.conf"
    launch.prepare(dinv, dinv.sentinel("sentinel-1"), out / "sentinel-1" / "sentinel.conf", sconf)
    assert f'sentinel auth-pass mymaster "{SECRET}"' in sconf.read_text()


def test_launch_keeps_a_sentinels_own_file_unless_it_lost_the_primarys_host(
    deployed: tuple[inventory.Inventory, Path], tmp_path: Path
) -> None:
    dinv, out = deployed
    s1, tpl = dinv.sentinel("sentinel-1"), out / "sentinel-1" / "sentinel.conf"
    conf = tmp_path / "sentinel.conf"
    conf.write_text("sentinel monitor mymaster redis-2 6379 2\nsentinel config-epoch mymaster 3\n")
    assert "kept" in launch.prepare(dinv, s1, tpl, conf)
    assert "config-epoch mymaster 3" in conf.read_text()
    # what Redis 7.0.15 wrote when the monitored name did not resolve at start (measured)
    conf.write_text("sentinel monitor mymaster  6379 2\n")
    done = launch.prepare(dinv, s1, tpl, conf)
    assert "empty host" in done
    assert "sentinel monitor mymaster redis-1 6379 2" in conf.read_text()


def test_launch_starts_nodes_through_safestart_unless_the_backend_said_otherwise(
    deployed: tuple[inventory.Inventory, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-sentinel") is None:
        pytest.skip("redis-server / redis-sentinel not on PATH")
    dinv, _ = deployed
    start = tmp_path / "start.json"
    monkeypatch.setattr(launch, "START", start)
    conf = tmp_path / "redis.conf"
    argv = launch.argv(dinv, dinv.node("redis-1"), conf)
    assert argv[: argv.index("--") + 1] == safestart.wrap_argv(dinv, dinv.node("redis-1"), [])
    assert argv[-1] == str(conf)
    start.write_text(json.dumps({"args": ["--replica-priority", "0"], "safe": False}))
    assert launch.argv(dinv, dinv.node("redis-1"), conf)[1:] == [
        str(conf),
        "--replica-priority",
        "0",
    ]
    s = launch.argv(dinv, dinv.sentinel("sentinel-2"), tmp_path / "s.conf")
    assert Path(s[0]).name == "redis-sentinel" and s[1:] == [str(tmp_path / "s.conf")]


def test_launch_bad_input_is_one_line(deployed: tuple[inventory.Inventory, Path]) -> None:
    dinv, out = deployed
    env = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
    base = [sys.executable, "-m", "redis_ha.launch", "--inventory", str(out / "inventory.yaml")]
    tail = ["--template", str(out / "redis-1" / "redis.conf"), "--conf", str(out / "x.conf")]
    p = subprocess.run(
        [*base, "--service", "redis-9", *tail], capture_output=True, text=True, env=env
    )
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr
    assert "redis-9: no node or Sentinel of that name" in p.stderr
    p = subprocess.run(
        [*base, "--service", "redis-1", *tail], capture_output=True, text=True, env=env
    )
    assert p.returncode != 0 and "the password variable $REDIS_PASSWORD is not set" in p.stderr
    assert "Traceback" not in p.stderr and not (out / "x.conf").exists()


def test_launch_execs_a_node_that_answers_with_the_password_from_the_environment(
    tmp_path: Path,
) -> None:
    """The start command for real, without Docker: a systemd-target render of a loopback
    inventory, `python -m redis_ha.launch` with only $REDIS_PASSWORD set; the PID it was started
    as becomes redis-server (through safestart: no Sentinel answers, so as configured)."""
    import time

    import redis

    from redis_ha.lab.ports import free_ports

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH")
    ports = free_ports(6)
    eps = [{"name": n, "host": "127.0.0.1", "port": p} for n, p in zip(
        ("redis-1", "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3"), ports,
        strict=True,
    )]  # fmt: skip
    src = tmp_path / "inv.yaml"
    src.write_text(yaml.safe_dump({
        "name": "t", "lab": False, "master_name": "mymaster",
        "auth": {"password_env": "REDIS_PASSWORD"}, "nodes": eps[:3], "sentinels": eps[3:],
    }))  # fmt: skip
    out = tmp_path / "out"
    deploy.render_target(inventory.load(src), "systemd", out, python=sys.executable)
    data = tmp_path / "data"
    data.mkdir()
    tpl = (out / "redis-1.conf").read_text().replace("/var/lib/redis-ha/redis-1", str(data))
    (out / "redis-1.conf").write_text(tpl.replace("bind * -::*", "bind 127.0.0.1"))
    env = {**os.environ, "REDIS_PASSWORD": SECRET, "REDIS_HA_HANDOVER_TIMEOUT": "2"}
    p = subprocess.Popen(
        [sys.executable, "-m", "redis_ha.launch", "--inventory", str(out / "inventory.yaml"),
         "--service", "redis-1", "--template", str(out / "redis-1.conf"),
         "--conf", str(data / "redis.conf")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        c = redis.Redis(port=ports[0], password=SECRET, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert c.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline and p.poll() is None, p.poll()
                time.sleep(0.2)
        server = os.path.realpath(shutil.which("redis-server") or "redis-server")
        assert os.readlink(f"/proc/{p.pid}/exe") == server  # exec'd: the PID is Redis's
        assert c.config_get("logfile") == {"logfile": ""}
        assert stat.S_IMODE((data / "redis.conf").stat().st_mode) == 0o600
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=ports[0], password="wrong", socket_timeout=1).ping()
    finally:
        p.terminate()
        log = p.communicate(timeout=20)[0]
    assert "redis-ha launch: redis-1: " in log and "safestart: redis-1: " in log, log
