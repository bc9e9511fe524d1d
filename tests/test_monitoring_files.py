"""The alert rules and the Grafana dashboard: promtool, runbook links, names the exporter emits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from redis_ha import metrics

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "alerts.yaml"
RULE_TESTS = ROOT / "monitoring" / "alerts_test.yaml"
DASHBOARD = ROOT / "monitoring" / "grafana-dashboard.json"
# Series Prometheus adds to every scrape itself, not the exporter's.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "changes", "delta",
    "and", "or", "unless", "on", "ignoring", "by", "without", "group_left", "group_right",
    "bool", "offset", "absent", "histogram_quantile", "max_over_time", "min_over_time",
}  # fmt: skip
REQUIRED_ALERTS = {
    "RedisHAPrimaryDown",
    "RedisHAFailoverHappened",
    "RedisHAReplicaLagHigh",
    "RedisHAQuorumAtRisk",
    "RedisHASplitBrain",
    "RedisHAConfigDrift",
    "RedisHAMemoryPressure",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.skip(
            "promtool not found: the alert rules are NOT checked. Install Debian's "
            "`prometheus` package (./scripts/setup does)"
        )
    return path


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (label matchers, groupings, ranges removed)."""
    e = re.sub(r'"[^"]*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word, after = m.group(0), e[m.end() : m.end() + 1]
        if word not in PROMQL_WORDS and after != "(":
            names.add(word)
    return names


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def rules() -> list[dict]:
    data = yaml.safe_load(RULES.read_text())
    return [r for g in data["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    d = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in d["panels"] for t in p.get("targets", [])]


def test_rules_pass_promtool_check() -> None:
    r = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout


def test_rules_pass_promtool_unit_tests() -> None:
    r = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == {r["alert"] for r in rules()}  # every alert has a unit test


def test_every_required_alert_points_at_an_existing_runbook_section() -> None:
    assert {r["alert"] for r in rules()} >= REQUIRED_ALERTS
    for r in rules():
        url = r["annotations"]["runbook_url"]
        prefix = "{{ $externalLabels.runbook_base }}/"
        assert url.startswith(prefix), (r["alert"], url)
        path, _, anchor = url.removeprefix(prefix).partition("#")
        target = ROOT / path
        assert target.is_file(), (r["alert"], path)
        if anchor:
            slugs = {
                github_slug(line.lstrip("#"))
                for line in target.read_text().splitlines()
                if line.startswith("#")
            }
            assert anchor in slugs, (r["alert"], anchor, sorted(slugs))


def test_rules_read_only_metrics_the_exporter_emits() -> None:
    for r in rules():
        unknown = metric_names(r["expr"]) - set(metrics.BY_NAME)
        assert not unknown, (r["alert"], unknown)


def test_dashboard_is_importable_and_reads_only_exporter_metrics() -> None:
    d = json.loads(DASHBOARD.read_text())
    assert d["__inputs"][0]["pluginId"] == "prometheus"
    assert d["title"] and d["uid"] and isinstance(d["schemaVersion"], int)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
    used: set[str] = set()
    for e in dashboard_exprs():
        names = metric_names(e)
        assert names, e
        used |= names
    unknown = used - set(metrics.BY_NAME) - PROMETHEUS_SERIES
    assert not unknown, unknown
    # what the issue asks the dashboard to show
    for must in (
        "redis_ha_replication_lag_milliseconds",
        "redis_ha_cost_monthly_usd",
        "redis_ha_cost_budget_usd",
        "redis_ha_split_brain",
        "redis_ha_last_failover_duration_seconds",
    ):
        assert must in used, must


def test_metric_name_extraction() -> None:
    e = 'sum by (node) (rate(redis_keyspace_hits_total{node="a"}[5m])) / on (node) redis_up'
    assert metric_names(e) == {"redis_keyspace_hits_total", "redis_up"}
    assert github_slug(" 3. Sentinels can authorise a failover {#quorum}") == (
        "3-sentinels-can-authorise-a-failover-quorum"
    )
