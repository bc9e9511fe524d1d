"""Gather read-only facts from every node and Sentinel, in parallel, with short timeouts.

Facts are plain data: everything that decides a plan or a verdict is computed from them by pure
functions (`health.py`), so the decisions can be tested without a cluster. One dead or frozen
node costs one socket timeout, never a stalled command. Read through resp.py (the standard
library), not redis-py: `status` and `health` are whole processes run by cron and monitors,
and importing redis-py alone took longer than they may.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from redis_ha import resp
from redis_ha.conn import FAST_TIMEOUT, credential_problem, describe_error, reader
from redis_ha.errors import InventoryError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.servers import identity

CONFIG_KEYS = (
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
    "replica-priority",
    "save",
    "appendonly",
    "maxmemory",
    "maxmemory-policy",
    "client-output-buffer-limit",  # its replica class bounds a full sync under writes
)

# INFO figures kept as numbers for monitoring (watch, metrics, capacity), named as INFO names them.
STAT_KEYS = (
    "instantaneous_ops_per_sec",
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "evicted_keys",
    "expired_keys",
    "connected_clients",
    "blocked_clients",
    "rejected_connections",
    "used_memory_rss",
    "used_memory_peak",
    "mem_fragmentation_ratio",
    "repl_backlog_size",
    "repl_backlog_histlen",
    "master_repl_offset",
    "connected_slaves",
    "sync_full",
    "total_net_input_bytes",
    "total_net_output_bytes",
)


@dataclass
class ReplicaLink:
    """A replica as its primary sees it (INFO replication `slaveN`)."""

    address: str
    name: str | None
    state: str
    offset: int
    lag_s: int


@dataclass
class NodeFacts:
    """What one Redis node says about itself."""

    name: str
    address: str
    up: bool
    error: str | None = None
    denied: bool = False  # it refused our credentials, or they could not be read
    role: str | None = None  # "master" | "replica"
    replicating_from: str | None = None  # node name, or host:port when not in the inventory
    link_up: bool | None = None
    offset: int | None = None
    lag_ms: int | None = None
    lag_bytes: int | None = None
    sync_in_progress: bool = False
    loading: bool = False
    keys: int | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    total_memory: int | None = None
    writes_paused: bool | None = None  # a node whose probe PUBLISH stalls (CLIENT PAUSE)
    replica_priority: int | None = None
    good_replicas: int | None = None  # min_slaves_good_slaves, when min-replicas-to-write is set
    replicas: list[ReplicaLink] = field(default_factory=list)
    run_id: str | None = None
    server: str | None = None  # "redis" | "valkey" (INFO server_name; absent means Redis)
    version: str | None = None  # that server's own version (valkey_version for Valkey)
    pid: int | None = None
    uptime_s: int | None = None
    config: dict[str, str] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)  # STAT_KEYS from INFO
    elapsed_ms: int = 0


@dataclass
class SentinelFacts:
    """What one Sentinel believes about the monitored primary."""

    name: str
    address: str
    up: bool
    error: str | None = None
    primary: str | None = None  # host:port from GET-MASTER-ADDR-BY-NAME
    primary_name: str | None = None  # the inventory name of that address, if any
    flags: list[str] = field(default_factory=list)
    config_epoch: int | None = None
    failover_state: str | None = None
    num_other_sentinels: int | None = None
    num_replicas: int | None = None
    quorum_ok: bool | None = None
    quorum_msg: str | None = None
    replicas: list[dict[str, Any]] = field(default_factory=list)
    sentinels: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    server: str | None = None
    version: str | None = None
    # Option tokens of SENTINEL FAILOVER per the Sentinel's COMMAND DOCS (["COORDINATED"] on
    # Valkey 9+); None when it cannot show them. Read by servers.coordinated_failover.
    failover_options: list[str] | None = None
    tilt: bool = False  # INFO sentinel `sentinel_tilt`: it acts on nothing until it leaves TILT
    elapsed_ms: int = 0
    denied: bool = False  # it refused our credentials (as NodeFacts.denied)

    @property
    def failing_over(self) -> bool:
        """This Sentinel is in the middle of a failover: acting now would race it."""
        return (
            self.failover_state not in (None, "", "none")
            or "failover_in_progress" in self.flags
            or "promoted" in self.flags
        )


@dataclass
class ClusterFacts:
    """A snapshot of the whole cluster, taken in one parallel sweep."""

    inventory: str
    master_name: str
    taken_at: float
    elapsed_ms: int
    nodes: list[NodeFacts]
    sentinels: list[SentinelFacts]

    def node(self, name: str) -> NodeFacts:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def sentinel(self, name: str) -> SentinelFacts:
        for s in self.sentinels:
            if s.name == name:
                return s
        raise KeyError(name)

    def claimed_primaries(self) -> list[NodeFacts]:
        """Reachable nodes that say they are a primary."""
        return [n for n in self.nodes if n.up and n.role == "master"]

    def denied(self) -> list[NodeFacts | SentinelFacts]:
        """Nodes and Sentinels that answered but refused our credentials."""
        nodes: list[NodeFacts | SentinelFacts] = [n for n in self.nodes if n.denied]
        return nodes + [s for s in self.sentinels if s.denied]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(v: Any, default: int | None = None) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _unreachable(f: NodeFacts | SentinelFacts, e: Exception, inv: Inventory) -> None:
    """Why an endpoint did not answer, as data (and whether it refused our credentials)."""
    f.up = False
    f.error = describe_error(e, inv)
    f.denied = credential_problem(e) is not None


def node_facts(inv: Inventory, ep: Endpoint, timeout: float = FAST_TIMEOUT) -> NodeFacts:
    """Facts of one node: one round trip (pipeline) so a hung node costs one timeout."""
    t0 = time.monotonic()
    f = NodeFacts(name=ep.name, address=ep.address, up=False)
    try:
        c = reader(inv, ep, timeout=timeout)
    except InventoryError as e:
        f.error, f.denied = str(e), True  # the password source cannot be read
        return f
    try:
        raw, dbsize, cfg = c.pipeline(("INFO", "all"), ("DBSIZE",), ("CONFIG", "GET", *CONFIG_KEYS))
        if isinstance(raw, Exception):
            raise raw
        info = resp.parse_info(str(raw))
        f.up = True
        f.keys = dbsize if isinstance(dbsize, int) else None
        if isinstance(cfg, list):
            f.config = dict(zip(cfg[::2], cfg[1::2], strict=False))
        elif isinstance(cfg, dict):
            f.config = {str(k): str(v) for k, v in cfg.items()}
        _fill_node(f, inv, info)
        # Replicas too: a paused replica that Sentinel promotes holds every write back.
        f.writes_paused = _writes_paused(inv, ep)
    except (resp.Error, OSError) as e:
        _unreachable(f, e, inv)
    finally:
        c.close()
        f.elapsed_ms = int((time.monotonic() - t0) * 1000)
    return f


# Redis 7.0 shows no pause in INFO: a PUBLISH to a channel nobody reads is the harmless command
# CLIENT PAUSE WRITE holds back; its stall within this time is the pause.
PAUSE_PROBE_S = 0.25
PAUSE_PROBE_CHANNEL = "redis-ha-runbooks:pause-probe"


def _writes_paused(inv: Inventory, ep: Endpoint) -> bool | None:
    """True when a write-class command stalls while the node answers PING on another
    connection at once (a node merely slow is None: unknown, never "paused")."""
    with reader(inv, ep, timeout=PAUSE_PROBE_S) as c:
        try:
            c.call("PUBLISH", PAUSE_PROBE_CHANNEL, "")
            return False
        except resp.Timeout:
            pass
        except (resp.Error, OSError):
            return None
    with reader(inv, ep, timeout=PAUSE_PROBE_S) as ping:
        try:
            return ping.call("PING") == "PONG" or None
        except (resp.Error, OSError):
            return None


def _fill_node(f: NodeFacts, inv: Inventory, info: dict[str, Any]) -> None:
    role = info.get("role")
    f.role = "replica" if role in ("slave", "replica") else role
    f.run_id = info.get("run_id")
    f.server, f.version = identity(info)
    f.pid = _int(info.get("process_id"))
    f.uptime_s = _int(info.get("uptime_in_seconds"))
    f.loading = bool(_int(info.get("loading"), 0))
    f.used_memory = _int(info.get("used_memory"))
    f.maxmemory = _int(info.get("maxmemory"))
    f.total_memory = _int(info.get("total_system_memory"))
    f.replica_priority = _int(f.config.get("replica-priority"))
    for k in STAT_KEYS:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            f.stats[k] = float(info[k])
    if f.role == "master":
        f.offset = _int(info.get("master_repl_offset"))
        f.good_replicas = _int(info.get("min_slaves_good_slaves"))
        for i in range(int(info.get("connected_slaves", 0) or 0)):
            s = info.get(f"slave{i}")
            if not isinstance(s, dict):
                continue
            addr = f"{s.get('ip')}:{s.get('port')}"
            f.replicas.append(
                ReplicaLink(
                    address=addr,
                    name=inv.name_of(addr),
                    state=str(s.get("state")),
                    offset=_int(s.get("offset"), 0) or 0,
                    lag_s=_int(s.get("lag"), 0) or 0,
                )
            )
    else:
        host, port = info.get("master_host"), info.get("master_port")
        if host is not None:
            f.replicating_from = inv.name_of(f"{host}:{port}")
        f.link_up = info.get("master_link_status") == "up"
        f.offset = _int(info.get("slave_repl_offset"))
        f.sync_in_progress = bool(_int(info.get("master_sync_in_progress"), 0))


def sentinel_facts(
    inv: Inventory, ep: Endpoint, timeout: float = FAST_TIMEOUT, *, detail: bool = True
) -> SentinelFacts:
    """What one Sentinel believes, in one pipelined round trip."""
    t0 = time.monotonic()
    f = SentinelFacts(name=ep.name, address=ep.address, up=False)
    try:
        c = reader(inv, ep, timeout=timeout)
    except InventoryError as e:
        f.error, f.denied = str(e), True  # the password source cannot be read
        return f
    m = inv.master_name
    try:
        res = c.pipeline(
            ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", m),
            ("SENTINEL", "MASTER", m),
            ("SENTINEL", "CKQUORUM", m),
            *((("SENTINEL", "REPLICAS", m), ("SENTINEL", "SENTINELS", m)) if detail else ()),
            ("INFO", "sentinel"),
            ("INFO", "server"),
            ("COMMAND", "DOCS", "sentinel|failover"),
        )
        for i in (-3, -2):  # the two INFO replies, parsed as redis-py would
            if isinstance(res[i], str):
                res[i] = resp.parse_info(res[i])
        addr, master, ck = res[0], res[1], res[2]
        if isinstance(res[-3], dict):
            f.tilt = bool(_int(res[-3].get("sentinel_tilt"), 0))
        if isinstance(addr, resp.ReplyError) and "unknown" not in str(addr).lower():
            # e.g. NOAUTH / WRONGPASS: the Sentinel answered but refused us.
            raise addr
        f.up = True
        if isinstance(addr, list) and len(addr) == 2:
            f.primary = f"{addr[0]}:{addr[1]}"
            f.primary_name = inv.name_of(f.primary)
        if isinstance(master, (list, dict)):
            md = _pairs(master)
            f.flags = str(md.get("flags", "")).split(",")
            f.config_epoch = _int(md.get("config-epoch"))
            f.failover_state = md.get("failover-state")
            f.num_other_sentinels = _int(md.get("num-other-sentinels"))
            f.num_replicas = _int(md.get("num-slaves"))
            f.config = {
                k: str(md[k])
                for k in ("quorum", "down-after-milliseconds", "failover-timeout", "parallel-syncs")
                if k in md
            }
        elif isinstance(master, Exception):
            f.error = f"does not monitor {m!r}: {master}"
        if isinstance(ck, Exception):
            f.quorum_ok, f.quorum_msg = False, str(ck)
        else:
            f.quorum_ok, f.quorum_msg = True, str(ck)
        if isinstance(res[-2], dict):
            f.server, f.version = identity(res[-2])
        if not isinstance(res[-1], Exception):
            f.failover_options = argument_tokens(res[-1])
        if detail and len(res) >= 7:
            if isinstance(res[3], list):
                f.replicas = [_pairs(r) for r in res[3]]
            if isinstance(res[4], list):
                f.sentinels = [_pairs(s) for s in res[4]]
    except (resp.Error, OSError) as e:
        _unreachable(f, e, inv)
    finally:
        c.close()
        f.elapsed_ms = int((time.monotonic() - t0) * 1000)
    return f


def _pairs(v: Any) -> dict[str, Any]:
    """Sentinel replies are flat [k, v, k, v] lists (RESP2) or maps (RESP3)."""
    if isinstance(v, dict):
        return {str(k): val for k, val in v.items()}
    if isinstance(v, list):
        return {str(k): val for k, val in zip(v[::2], v[1::2], strict=False)}
    return {}


def argument_tokens(docs: Any) -> list[str] | None:
    """The option tokens of one command from its COMMAND DOCS reply; None for an empty reply.

    The reply is {name: {..., "arguments": [{"name": ..., "token": "COORDINATED"}, ...]}}, maps
    (RESP3) or flat [k, v, ...] lists (RESP2); block arguments nest their own "arguments".
    """
    entries = _pairs(docs)
    if not entries:
        return None
    doc = _pairs(next(iter(entries.values())))
    return [str(a["token"]).upper() for a in _arguments(doc) if a.get("token")]


def _arguments(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for raw in doc.get("arguments") or []:
        arg = _pairs(raw)
        yield arg
        yield from _arguments(arg)


def gather(inv: Inventory, timeout: float = FAST_TIMEOUT, *, detail: bool = True) -> ClusterFacts:
    """Facts from every node and Sentinel at once; total time is about one timeout."""
    t0 = time.monotonic()
    calls: list[Callable[[], NodeFacts | SentinelFacts]] = [
        *(lambda n=n: node_facts(inv, n, timeout) for n in inv.nodes),
        *(lambda s=s: sentinel_facts(inv, s, timeout, detail=detail) for s in inv.sentinels),
    ]
    every = at_once(calls)  # all at once: one hung endpoint costs one timeout in all
    nodes = [f for f in every if isinstance(f, NodeFacts)]
    sentinels = [f for f in every if isinstance(f, SentinelFacts)]
    _derive_lag(nodes)
    return ClusterFacts(
        inventory=str(inv.path),
        master_name=inv.master_name,
        taken_at=time.time(),
        elapsed_ms=int((time.monotonic() - t0) * 1000),
        nodes=nodes,
        sentinels=sentinels,
    )


T = TypeVar("T")


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Every call in a thread of its own, the results in order; the first exception re-raised
    (facts carry errors as data, so one is a bug). Plain threads: concurrent.futures would
    cost `status` and `health` its import (and logging's) for the same work."""
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], T]) -> None:
        try:
            out[i] = call()
        except BaseException as e:  # re-raised in the caller's thread below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def _derive_lag(nodes: list[NodeFacts]) -> None:
    """Fill each replica's lag from its primary's view (bytes exact, time in whole seconds)."""
    by_name = {n.name: n for n in nodes}
    for n in nodes:
        if n.role != "replica" or not n.replicating_from:
            continue
        p = by_name.get(n.replicating_from)
        if not p or not p.up or p.role != "master" or p.offset is None:
            continue
        if n.offset is not None and n.offset >= 0:
            n.lag_bytes = max(0, p.offset - n.offset)
        for link in p.replicas:
            if link.name == n.name:
                n.lag_ms = link.lag_s * 1000
