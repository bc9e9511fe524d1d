"""A real Prometheus server scrapes `invoke metrics.serve` on loopback and evaluates the rules.

Both processes get free ports, Prometheus its own throwaway data folder; both are stopped by PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_ha.conn import client
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports

from .conftest import ROOT, run_invoke
from .test_monitoring_files import RULES, dashboard_exprs

pytestmark = pytest.mark.lab
BASE = "https://example.test/redis-ha-runbooks/blob/main"


def _get(url: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        body = r.read().decode()
    return json.loads(body) if body.startswith(("{", "[")) else body


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def _wait(what: str, fn, timeout: float, procs: list[subprocess.Popen[bytes]]) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args[0]} exited with {p.returncode} while {what}"
        try:
            last = fn()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out {what}: {last}")


@pytest.fixture
def scraped(lab: Lab, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(exporter URL, Prometheus URL), both running; stopped by PID afterwards."""
    prom = shutil.which("prometheus")
    if not prom:
        pytest.skip(
            "prometheus not found: the scrape by a real Prometheus is NOT tested. Install "
            "Debian's `prometheus` package (./scripts/setup does)"
        )
    exp_port, prom_port = free_ports(2)
    env = {**os.environ, "NO_COLOR": "1"}
    log = (tmp_path / "exporter.log").open("wb")
    exporter = subprocess.Popen(
        [sys.executable, "-m", "invoke", "metrics.serve", "--port", str(exp_port)]
        + ["--inventory", str(lab.inv.path)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    cfg = {
        "global": {
            "scrape_interval": "1s",
            "evaluation_interval": "1s",
            "external_labels": {"runbook_base": BASE},
        },
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "redis-ha", "static_configs": [{"targets": [f"127.0.0.1:{exp_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    plog = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [
            prom,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=plog,
        stderr=subprocess.STDOUT,
    )
    exp_url, prom_url = f"http://127.0.0.1:{exp_port}", f"http://127.0.0.1:{prom_port}"
    try:
        _wait("starting the exporter", lambda: _get(f"{exp_url}/metrics"), 30, [exporter])
        _wait("starting Prometheus", lambda: _get(f"{prom_url}/-/ready"), 60, [server])
        yield exp_url, prom_url
    finally:
        _stop(server)
        _stop(exporter)
        log.close()
        plog.close()
    assert exporter.returncode == 0, (tmp_path / "exporter.log").read_text()[-2000:]


def query(prom: str, expr: str) -> dict[str, Any]:
    return _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))


def test_prometheus_scrapes_the_exporter_and_loads_the_rules(
    lab: Lab, scraped: tuple[str, str]
) -> None:
    _, prom = scraped
    procs: list[subprocess.Popen[bytes]] = []
    nodes = {ep.name for ep in lab.inv.nodes}
    c = client(lab.inv, lab.current_primary())
    try:
        c.set("prom-test:seed", "1")  # the heartbeat is never written to an empty primary
    finally:
        c.close()

    def all_up() -> bool:
        r = query(prom, 'redis_up{job="redis-ha"} == 1')["data"]["result"]
        return {s["metric"]["node"] for s in r} == nodes

    _wait("for Prometheus to scrape every node as up", all_up, 30, procs)
    up = query(prom, 'up{job="redis-ha"}')["data"]["result"]
    assert [s["value"][1] for s in up] == ["1"]
    lag = _wait(
        "for the heartbeat lag",
        lambda: query(prom, "redis_ha_replication_lag_milliseconds")["data"]["result"],
        10,
        procs,
    )
    assert len(lag) == 2 and all(float(s["value"][1]) < 100 for s in lag), lag
    scrape = float(query(prom, 'scrape_duration_seconds{job="redis-ha"}')["data"]["result"][0]
                   ["value"][1])  # fmt: skip
    print(f"Prometheus measured the exporter's scrape at {scrape * 1000:.1f} ms")
    assert scrape < 1.0
    groups = _get(f"{prom}/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(yaml.safe_load(RULES.read_text())["groups"][0]["rules"])
    assert {r["health"] for r in rules} == {"ok"}, [r.get("lastError") for r in rules]
    for expr in dashboard_exprs():  # every dashboard query is valid PromQL on real data
        res = query(prom, expr)
        assert res["status"] == "success", (expr, res)


def test_a_failover_fires_the_alert_with_its_runbook(lab: Lab, scraped: tuple[str, str]) -> None:
    _, prom = scraped
    procs: list[subprocess.Popen[bytes]] = []
    _wait(
        "for the first config epoch",
        lambda: query(prom, "redis_ha_config_epoch")["data"]["result"],
        30,
        procs,
    )
    r = run_invoke("failover.manual", "--yes", inventory=lab.inv.path, timeout=90)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    def firing() -> list[dict[str, Any]]:
        alerts = _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "RedisHAFailoverHappened" and a["state"] == "firing"
        ]

    alerts = _wait("for RedisHAFailoverHappened", firing, 30, procs)
    assert alerts[0]["annotations"]["runbook_url"] == f"{BASE}/runbooks/failover-automatic.md"
    events = query(prom, 'redis_ha_sentinel_events_total{event="+switch-master"}')
    assert events["data"]["result"], "the exporter's Sentinel feed saw no +switch-master"
    took = query(prom, "redis_ha_last_failover_duration_seconds")["data"]["result"]
    assert took and 0 < float(took[0]["value"][1]) < 10, took
