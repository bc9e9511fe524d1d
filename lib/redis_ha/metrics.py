"""Prometheus metrics: an exporter (`metrics.serve`) and a textfile (`health --prometheus FILE`).

Names follow redis_exporter (oliver006/redis_exporter) where they overlap, so its dashboards
and rules keep working: `redis_up`, `redis_memory_used_bytes`, `redis_keyspace_hits_total`,
`redis_connected_slave_lag_seconds` ... One exporter serves every node and Sentinel of an
inventory, so each series carries `node` (or `sentinel`) with the stable inventory name instead
of one exporter per instance. What redis_exporter lacks is under `redis_ha_`: replication lag in
milliseconds (heartbeat), Sentinel agreement, split-brain, quorum, config drift, writes paused or
refused, the last failover's duration, and the cost estimate against the budget.

`samples()` turns one round of facts into (name, labels, value) triples: pure, tested from data.
`CATALOG` lists every metric this module can emit; the Grafana dashboard and the alert rules
are checked against it (tests), and a real scrape is checked against it too.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from redis_ha import cost as costmod
from redis_ha import drift as driftmod
from redis_ha import health as healthmod
from redis_ha import heartbeat as hbmod
from redis_ha import sentinel_events
from redis_ha import view as viewmod
from redis_ha.errors import HAError
from redis_ha.facts import ClusterFacts
from redis_ha.health import Health
from redis_ha.heartbeat import Beat, Heartbeat
from redis_ha.inventory import Inventory
from redis_ha.sentinel_events import Event
from redis_ha.sentinel_feed import SentinelFeed

GAUGE, COUNTER = "gauge", "counter"
N = ("node", "addr")
S = ("sentinel",)


@dataclass(frozen=True)
class Spec:
    name: str  # as exposed (counters end in _total)
    kind: str
    help: str
    labels: tuple[str, ...] = ()


# INFO field -> (metric, kind): redis_exporter's names for the same fields.
INFO_METRICS = {
    "uptime_s": ("redis_uptime_in_seconds", GAUGE),
    "connected_clients": ("redis_connected_clients", GAUGE),
    "blocked_clients": ("redis_blocked_clients", GAUGE),
    "used_memory_rss": ("redis_memory_used_rss_bytes", GAUGE),
    "used_memory_peak": ("redis_memory_used_peak_bytes", GAUGE),
    "mem_fragmentation_ratio": ("redis_mem_fragmentation_ratio", GAUGE),
    "instantaneous_ops_per_sec": ("redis_instantaneous_ops_per_sec", GAUGE),
    "connected_slaves": ("redis_connected_slaves", GAUGE),
    "master_repl_offset": ("redis_master_repl_offset", GAUGE),
    "repl_backlog_size": ("redis_replication_backlog_bytes", GAUGE),
    "repl_backlog_histlen": ("redis_repl_backlog_history_bytes", GAUGE),
    "sync_full": ("redis_replica_resyncs_full", GAUGE),
    "total_commands_processed": ("redis_commands_processed_total", COUNTER),
    "keyspace_hits": ("redis_keyspace_hits_total", COUNTER),
    "keyspace_misses": ("redis_keyspace_misses_total", COUNTER),
    "evicted_keys": ("redis_evicted_keys_total", COUNTER),
    "expired_keys": ("redis_expired_keys_total", COUNTER),
    "rejected_connections": ("redis_rejected_connections_total", COUNTER),
    "total_net_input_bytes": ("redis_net_input_bytes_total", COUNTER),
    "total_net_output_bytes": ("redis_net_output_bytes_total", COUNTER),
}

CATALOG: tuple[Spec, ...] = (
    # redis_exporter names
    Spec("redis_up", GAUGE, "1 when the node answered the tool, else 0", N),
    Spec(
        "redis_instance_info",
        GAUGE,
        "Information about the Redis instance (always 1)",
        (*N, "role", "redis_version", "run_id"),
    ),
    Spec("redis_memory_used_bytes", GAUGE, "used_memory from INFO", N),
    Spec("redis_memory_max_bytes", GAUGE, "maxmemory from INFO (0: no limit)", N),
    Spec("redis_db_keys", GAUGE, "Keys in the database", (*N, "db")),
    Spec("redis_master_link_up", GAUGE, "1 when the replica's link to its primary is up", N),
    Spec("redis_slave_repl_offset", GAUGE, "The replica's replication offset", N),
    Spec("redis_master_sync_in_progress", GAUGE, "1 while the replica is in a full sync", N),
    Spec(
        "redis_connected_slave_lag_seconds",
        GAUGE,
        "Seconds since the replica's last ACK, as its primary sees it (whole seconds)",
        (*N, "slave"),
    ),
    Spec(
        "redis_connected_slave_offset_bytes",
        GAUGE,
        "The replica's offset as its primary sees it",
        (*N, "slave"),
    ),
    *(Spec(m, k, f"{f} from INFO", N) for f, (m, k) in INFO_METRICS.items()),
    Spec("redis_sentinel_master_slaves", GAUGE, "Replicas the Sentinel knows", S),
    Spec("redis_sentinel_master_sentinels", GAUGE, "Sentinels the Sentinel knows (itself too)", S),
    # what redis_exporter lacks
    Spec(
        "redis_ha_health_level",
        GAUGE,
        "Verdict: 0 healthy, 1 degraded, 2 down, 3 unknown (the tool cannot judge)",
    ),
    Spec("redis_ha_primary_up", GAUGE, "1 when the Sentinels' primary is reachable and writable"),
    Spec("redis_ha_node_is_primary", GAUGE, "1 for the primary the Sentinel majority names", N),
    Spec("redis_ha_node_denied", GAUGE, "1 when the node refused the tool's credentials", N),
    Spec(
        "redis_ha_replication_lag_milliseconds",
        GAUGE,
        "Age of the newest heartbeat the replica holds, on the primary's clock (see heartbeat.py)",
        N,
    ),
    Spec("redis_ha_replication_lag_bytes", GAUGE, "Replication bytes the replica is behind", N),
    Spec("redis_ha_heartbeat_ok", GAUGE, "1 when this round's heartbeat was written"),
    Spec("redis_ha_writes_paused", GAUGE, "1 when the primary held the heartbeat write (paused)"),
    Spec("redis_ha_writes_refused", GAUGE, "1 when the primary refused the write (NOREPLICAS)"),
    Spec("redis_ha_sentinel_up", GAUGE, "1 when the Sentinel answered", S),
    Spec(
        "redis_ha_sentinel_names_primary",
        GAUGE,
        "1 for the node each Sentinel names as primary",
        (*S, "primary"),
    ),
    Spec("redis_ha_sentinel_config_epoch", GAUGE, "The primary's config epoch per Sentinel", S),
    Spec("redis_ha_sentinel_failover_in_progress", GAUGE, "1 while the Sentinel fails over", S),
    Spec(
        "redis_ha_config_epoch",
        GAUGE,
        "Highest config epoch any Sentinel reports (+1 per failover)",
    ),
    Spec("redis_ha_sentinels_up", GAUGE, "Sentinels that answered"),
    Spec("redis_ha_sentinels_total", GAUGE, "Sentinels in the inventory"),
    Spec("redis_ha_quorum", GAUGE, "The configured quorum"),
    Spec("redis_ha_quorum_ok", GAUGE, "1 when the Sentinels can authorise a failover"),
    Spec("redis_ha_sentinels_agree", GAUGE, "1 when every Sentinel names the same primary"),
    Spec("redis_ha_split_brain", GAUGE, "1 when two nodes claim primary or Sentinels disagree"),
    Spec("redis_ha_primaries_claimed", GAUGE, "Nodes that say they are primary"),
    Spec("redis_ha_in_sync_replicas", GAUGE, "Replicas in sync with the primary"),
    Spec("redis_ha_replicas_expected", GAUGE, "Replicas the inventory expects"),
    Spec("redis_ha_config_drift", GAUGE, "Settings that differ from the inventory"),
    Spec(
        "redis_ha_config_unchecked", GAUGE, "Nodes and Sentinels whose settings could not be read"
    ),
    Spec(
        "redis_ha_sentinel_events_total",
        COUNTER,
        "Sentinel events received on pub/sub since the exporter started",
        ("event",),
    ),
    Spec(
        "redis_ha_sentinel_feed_connected",
        GAUGE,
        "1 while the exporter is subscribed to the Sentinel's events",
        S,
    ),
    Spec(
        "redis_ha_last_failover_duration_seconds",
        GAUGE,
        "How long the last failover took (detection to the last Sentinel switched, when known)",
    ),
    Spec(
        "redis_ha_last_failover_timestamp_seconds",
        GAUGE,
        "When the first Sentinel switched to the new primary in the last failover",
    ),
    Spec("redis_ha_cost_monthly_usd", GAUGE, "Monthly cost estimate from the price table"),
    Spec("redis_ha_cost_budget_usd", GAUGE, "The monthly budget from the inventory"),
    Spec("redis_ha_collect_duration_seconds", GAUGE, "Time this round of facts took"),
)
BY_NAME = {s.name: s for s in CATALOG}

Sample = tuple[str, dict[str, str], float]


def _b(v: bool) -> float:
    return 1.0 if v else 0.0


def samples(
    inv: Inventory,
    facts: ClusterFacts,
    health: Health,
    *,
    beat: Beat | None = None,
    event_counts: dict[str, int] | None = None,
    feed: dict[str, bool] | None = None,
    failover: sentinel_events.Failover | None = None,
) -> list[Sample]:
    """Every metric of one round, from facts and the verdict (pure)."""
    out: list[Sample] = []
    add = out.append
    add(("redis_ha_health_level", {}, float(healthmod.EXIT_CODES[health.level])))
    for n in facts.nodes:
        lb = {"node": n.name, "addr": n.address}
        add(("redis_up", lb, _b(n.up)))
        add(("redis_ha_node_denied", lb, _b(n.denied)))
        if not n.up:
            continue
        info = {"role": n.role or "", "redis_version": n.version or "", "run_id": n.run_id or ""}
        add(("redis_instance_info", {**lb, **info}, 1.0))
        add(("redis_ha_node_is_primary", lb, _b(n.name == health.primary)))
        if n.used_memory is not None:
            add(("redis_memory_used_bytes", lb, float(n.used_memory)))
        if n.maxmemory is not None:
            add(("redis_memory_max_bytes", lb, float(n.maxmemory)))
        if n.keys is not None:
            add(("redis_db_keys", {**lb, "db": "db0"}, float(n.keys)))
        stats = {**n.stats, **({"uptime_s": float(n.uptime_s)} if n.uptime_s is not None else {})}
        for field_name, (metric, _) in INFO_METRICS.items():
            if field_name in stats:
                add((metric, lb, stats[field_name]))
        if n.role == "replica":
            add(("redis_master_link_up", lb, _b(bool(n.link_up))))
            add(("redis_master_sync_in_progress", lb, _b(n.sync_in_progress)))
            if n.offset is not None:
                add(("redis_slave_repl_offset", lb, float(n.offset)))
            if n.lag_bytes is not None:
                add(("redis_ha_replication_lag_bytes", lb, float(n.lag_bytes)))
        for link in n.replicas:
            sl = {**lb, "slave": link.name or link.address}
            add(("redis_connected_slave_lag_seconds", sl, float(link.lag_s)))
            add(("redis_connected_slave_offset_bytes", sl, float(link.offset)))
    if beat is not None:
        for r in beat.replicas.values():
            if r.lag_ms is not None and r.source == hbmod.HEARTBEAT:
                ep = inv.node(r.node)
                lb = {"node": ep.name, "addr": ep.address}
                add(("redis_ha_replication_lag_milliseconds", lb, r.lag_ms))
        if beat.state != hbmod.OFF and beat.primary:
            add(("redis_ha_heartbeat_ok", {}, _b(beat.state == hbmod.OK)))
            if beat.state in (hbmod.OK, hbmod.PAUSED, hbmod.REFUSED):
                add(("redis_ha_writes_paused", {}, _b(beat.state == hbmod.PAUSED)))
                add(("redis_ha_writes_refused", {}, _b(beat.state == hbmod.REFUSED)))
    judged = health.level != healthmod.UNKNOWN  # else "0 Sentinels up" would be a false page
    epochs = []
    for s in facts.sentinels:
        sl = {"sentinel": s.name}
        if judged:
            add(("redis_ha_sentinel_up", sl, _b(s.up)))
        if feed is not None:
            add(("redis_ha_sentinel_feed_connected", sl, _b(feed.get(s.name, False))))
        if not s.up:
            continue
        if s.primary:
            add(("redis_ha_sentinel_names_primary", {**sl, "primary": s.primary_name or ""}, 1.0))
        if s.config_epoch is not None:
            add(("redis_ha_sentinel_config_epoch", sl, float(s.config_epoch)))
            epochs.append(s.config_epoch)
        add(("redis_ha_sentinel_failover_in_progress", sl, _b(s.failing_over)))
        if s.num_replicas is not None:
            add(("redis_sentinel_master_slaves", sl, float(s.num_replicas)))
        if s.num_other_sentinels is not None:
            add(("redis_sentinel_master_sentinels", sl, float(s.num_other_sentinels + 1)))
    if epochs:
        add(("redis_ha_config_epoch", {}, float(max(epochs))))
    add(("redis_ha_sentinels_total", {}, float(len(inv.sentinels))))
    add(("redis_ha_quorum", {}, float(inv.settings.quorum)))
    if judged:
        drifts, unchecked = driftmod.find_drift(inv, facts)
        add(("redis_ha_sentinels_up", {}, float(sum(s.up for s in facts.sentinels))))
        add(
            (
                "redis_ha_primary_up",
                {},
                _b(health.primary is not None and health.level != healthmod.DOWN),
            )
        )
        add(("redis_ha_quorum_ok", {}, _b(health.quorum_ok)))
        add(("redis_ha_sentinels_agree", {}, _b(health.sentinels_agree)))
        add(("redis_ha_split_brain", {}, _b(health.split_brain)))
        add(("redis_ha_primaries_claimed", {}, float(len(facts.claimed_primaries()))))
        add(("redis_ha_in_sync_replicas", {}, float(len(health.in_sync_replicas))))
        add(("redis_ha_replicas_expected", {}, float(len(inv.nodes) - 1)))
        add(("redis_ha_config_drift", {}, float(len(drifts))))
        add(("redis_ha_config_unchecked", {}, float(len(unchecked))))
    for event, count in sorted((event_counts or {}).items()):
        add(("redis_ha_sentinel_events_total", {"event": event}, float(count)))
    if failover is not None:
        took = failover_seconds(failover)
        if took is not None:
            add(("redis_ha_last_failover_duration_seconds", {}, took))
        if failover.first_switch is not None:
            add(("redis_ha_last_failover_timestamp_seconds", {}, failover.first_switch))
    try:
        est = costmod.estimate(inv)
    except HAError:
        est = None  # no sizes in the inventory: no cost figure
    if est is not None:
        add(("redis_ha_cost_monthly_usd", {}, est.monthly_usd))
        if est.budget_usd is not None:
            add(("redis_ha_cost_budget_usd", {}, est.budget_usd))
    add(("redis_ha_collect_duration_seconds", {}, facts.elapsed_ms / 1000))
    return out


def failover_seconds(f: sentinel_events.Failover) -> float | None:
    """Detection to the last switch for a crash; request to the end for a requested one."""
    total = f.durations()["failover_total_s"]
    if total is not None:
        return total
    end = f.ended or f.last_switch
    return round(end - f.started, 3) if f.started is not None and end is not None else None


def families(rows: list[Sample]) -> list[Metric]:
    """Group samples into metric families, in CATALOG order (unknown names are a bug)."""
    grouped: dict[str, list[Sample]] = {}
    for r in rows:
        if r[0] not in BY_NAME:
            raise KeyError(f"metric {r[0]} is not in metrics.CATALOG")
        grouped.setdefault(r[0], []).append(r)
    out: list[Metric] = []
    for spec in CATALOG:
        rs = grouped.get(spec.name)
        if not rs:
            continue
        labels = list(rs[0][1])
        fam: GaugeMetricFamily | CounterMetricFamily
        if spec.kind == COUNTER:
            fam = CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=labels)
        else:
            fam = GaugeMetricFamily(spec.name, spec.help, labels=labels)
        for _, lb, value in rs:
            fam.add_metric([lb[k] for k in labels], value)
        out.append(fam)
    return out


class _Rows(Collector):
    def __init__(self, rows: list[Sample]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        yield from families(self.rows)


def write_textfile(path: str | Path, rows: list[Sample]) -> None:
    """Write the metrics for node_exporter's textfile collector (atomic: temp file + rename)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Rows(rows))
    try:
        write_to_textfile(str(path), reg)
    except OSError as e:
        raise HAError(f"cannot write {path}: {e.strerror or e}") from None


class Exporter(Collector):
    """A fresh round of facts, heartbeat and Sentinel feed per scrape (scrapes never overlap)."""

    def __init__(self, inv: Inventory, *, heartbeat: bool = True, budget_s: float = 0.25):
        self.inv = inv
        self.hb = Heartbeat(inv, enabled=heartbeat, budget_s=budget_s)
        self.feed = SentinelFeed(inv)
        self.events: list[Event] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.last_scrape_s: float | None = None
        try:  # what the Sentinels logged before we started (the lab, or control.log_file)
            self.events, _ = sentinel_events.read_events(inv)
        except OSError:
            self.events = []

    def start(self) -> Exporter:
        self.feed.start()
        self.feed.wait_connected(2.0)
        return self

    def close(self) -> None:
        self.feed.stop()
        self.hb.close()

    def rows(self) -> list[Sample]:
        with self._lock:
            t0 = time.perf_counter()
            v = viewmod.take(self.inv, detail=False)
            facts, health = v.facts, v.health
            beat = None if health.level == healthmod.UNKNOWN else self.hb.measure(facts, health)
            new = self.feed.drain()
            self.counts.update(e.name for e in new)
            self.events = (self.events + new)[-2000:]
            fo = sentinel_events.last_failover(
                self.events,
                self.inv.master_name,
                down_after_ms=self.inv.settings.down_after_ms,
                failover_timeout_ms=self.inv.settings.failover_timeout_ms,
            )
            rows = samples(
                self.inv,
                facts,
                health,
                beat=beat,
                event_counts=dict(self.counts),
                feed=self.feed.connected(),
                failover=fo,
            )
            self.last_scrape_s = time.perf_counter() - t0
            return rows

    def collect(self) -> Iterator[Metric]:
        yield from families(self.rows())


def serve(
    inv: Inventory,
    *,
    host: str,
    port: int,
    heartbeat: bool,
    stop: threading.Event,
    ready: Any = None,
) -> None:
    """Serve /metrics until `stop` is set."""
    from prometheus_client import start_http_server

    exp = Exporter(inv, heartbeat=heartbeat).start()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(exp)
    try:
        server, thread = start_http_server(port, addr=host, registry=reg)
    except OSError as e:
        exp.close()
        raise HAError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        if ready:
            ready(f"http://{host}:{port}/metrics")
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        exp.close()
