"""The live watch: one frame per interval from facts, a heartbeat round and the Sentinel feed.

A frame is plain data (`build_frame` is pure), so `watch --once --json` and the live screen show
the same figures, and the figures are tested without a terminal. The screen is built from a
frame by `render`. Hit rates are per interval when a previous frame exists (counters' deltas),
else since the node started, and the frame says which.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from redis_ha import health as healthmod
from redis_ha import view as viewmod
from redis_ha.capacity import hit_rate_since_start, human_bytes
from redis_ha.facts import ClusterFacts, NodeFacts
from redis_ha.health import Health
from redis_ha.heartbeat import BUDGET_S, FAILED, Beat, Heartbeat, ReplicaLag, key
from redis_ha.inventory import Inventory
from redis_ha.sentinel_events import Event, fmt_ts
from redis_ha.sentinel_feed import SentinelFeed

# Events that change who is primary or whether failover can happen: shown in colour.
LOUD = ("+switch-master", "+odown", "+sdown", "+tilt", "+convert-to-slave", "-failover-abort")
SCROLL = 15

Counters = dict[str, tuple[float, float, float]]  # node -> (taken_at, hits, misses)


def hit_rate(n: NodeFacts, taken_at: float, prev: Counters) -> tuple[float | None, str]:
    """(hit rate, window): over the interval since the previous frame, else since start."""
    hits, misses = n.stats.get("keyspace_hits"), n.stats.get("keyspace_misses")
    if hits is None or misses is None:
        return None, "-"
    before = prev.get(n.name)
    if before and hits >= before[1] and misses >= before[2]:
        dh, dm = hits - before[1], misses - before[2]
        if dh + dm > 0:
            return round(dh / (dh + dm), 4), f"last {taken_at - before[0]:.1f} s"
        return None, f"no reads in the last {taken_at - before[0]:.1f} s"
    return hit_rate_since_start(n.stats), "since start"


def update_counters(facts: ClusterFacts, prev: Counters) -> None:
    for n in facts.nodes:
        if n.up and "keyspace_hits" in n.stats:
            prev[n.name] = (facts.taken_at, n.stats["keyspace_hits"], n.stats["keyspace_misses"])


def build_frame(
    inv: Inventory,
    facts: ClusterFacts,
    health: Health,
    beat: Beat,
    events: list[Event],
    prev: Counters,
    feed: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """The figures of one frame, as the `--json` object."""
    nodes = []
    for n in facts.nodes:
        lag: ReplicaLag | None = beat.replicas.get(n.name)
        rate, window = hit_rate(n, facts.taken_at, prev)
        nodes.append(
            {
                "name": n.name,
                "address": n.address,
                "up": n.up,
                "error": n.error,
                "denied": n.denied,
                "role": n.role,
                "primary": n.name == health.primary,
                "replicating_from": n.replicating_from,
                "link_up": n.link_up,
                "offset": n.offset,
                "lag_ms": lag.lag_ms if lag else None,
                "lag_source": lag.source if lag else None,
                "lag_bytes": n.lag_bytes,
                "lag_note": lag.note if lag else None,
                "ops_per_s": n.stats.get("instantaneous_ops_per_sec"),
                "hit_rate": rate,
                "hit_rate_window": window,
                "used_memory": n.used_memory,
                "maxmemory": n.maxmemory,
                "clients": n.stats.get("connected_clients"),
                "keys": n.keys,
            }
        )
    replicas = [
        {k: d[k] for k in ("name", "lag_ms", "lag_source", "lag_bytes", "link_up", "lag_note")}
        for d in nodes
        if d["name"] in beat.replicas
    ]
    return {
        "taken_at": facts.taken_at,
        "elapsed_ms": facts.elapsed_ms,
        "inventory": str(inv.path),
        "master_name": inv.master_name,
        "level": health.level,
        "primary": health.primary,
        "sentinels_agree": health.sentinels_agree,
        "quorum_ok": health.quorum_ok,
        "split_brain": health.split_brain,
        "problems": health.problems,
        "heartbeat": {
            "key": key(inv),
            "state": beat.state,
            "note": beat.note,
            "write_ms": beat.write_ms,
        },
        "nodes": nodes,
        "replicas": replicas,
        "sentinels": [
            {
                "name": s.name,
                "up": s.up,
                "error": s.error,
                "primary": s.primary_name,
                "config_epoch": s.config_epoch,
                "flags": [f for f in s.flags if f and f != "master"],
                "failover_state": s.failover_state,
            }
            for s in facts.sentinels
        ],
        "events": [asdict(e) for e in events],
        "sentinel_feed": feed,
    }


class Watcher:
    """Takes frames: facts, a heartbeat round, and the Sentinel events since the last frame."""

    def __init__(
        self,
        inv: Inventory,
        *,
        heartbeat: bool = True,
        feed: bool = True,
        budget_s: float = BUDGET_S,
    ) -> None:
        self.inv = inv
        self.hb = Heartbeat(inv, enabled=heartbeat, budget_s=budget_s)
        self.feed = SentinelFeed(inv) if feed else None
        self.counters: Counters = {}
        self.scroll: deque[dict[str, Any]] = deque(maxlen=SCROLL)

    def start(self) -> Watcher:
        if self.feed:
            self.feed.start()
            self.feed.wait_connected(2.0)
        return self

    def close(self) -> None:
        if self.feed:
            self.feed.stop()
        self.hb.close()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frame(self) -> dict[str, Any]:
        v = viewmod.take(self.inv, detail=False)
        facts, health = v.facts, v.health
        if health.level == healthmod.UNKNOWN:
            beat = Beat(FAILED, f"cannot judge: check {self.inv.credential_source()}")
        else:
            beat = self.hb.measure(facts, health)
        events = self.feed.drain() if self.feed else []
        feed = self.feed.connected() if self.feed else None
        f = build_frame(self.inv, facts, health, beat, events, self.counters, feed)
        update_counters(facts, self.counters)
        self.scroll.extend(f["events"])
        return f


# --- the screen -----------------------------------------------------------------------------


def _mem(n: dict[str, Any]) -> str:
    used, mx = n["used_memory"], n["maxmemory"]
    if used is None or not mx:
        return human_bytes(used)
    return f"{human_bytes(used)} / {human_bytes(mx)} ({used / mx:.0%})"


def _lag(n: dict[str, Any]) -> str:
    if n["lag_ms"] is None:
        return "-" if n["role"] != "replica" else "[yellow]?[/]"
    style = "red" if n["lag_ms"] > 500 else ("yellow" if n["lag_ms"] > 100 else "green")
    src = "" if n["lag_source"] == "heartbeat" else " [dim](offsets)[/]"
    return f"[{style}]{n['lag_ms']:.2f} ms[/]{src}"


def render(frame: dict[str, Any], scroll: list[dict[str, Any]]) -> Group:
    """The live screen of one frame, with the last Sentinel events scrolling below."""
    level = frame["level"]
    style = {"healthy": "green", "degraded": "yellow", "down": "red"}.get(level, "magenta")
    hb = frame["heartbeat"]
    head = Text.from_markup(
        f"[bold {style}]{level.upper()}[/]  primary: [bold]{frame['primary'] or 'none'}[/]  "
        f"quorum: {'OK' if frame['quorum_ok'] else 'NO'}  "
        f"split-brain: {'YES' if frame['split_brain'] else 'no'}  "
        f"heartbeat: {hb['state']}  [dim]{fmt_ts(frame['taken_at'])} UTC  "
        f"facts {frame['elapsed_ms']} ms[/]"
    )
    t = Table(box=box.SIMPLE, title_justify="left", title=f"Redis nodes ({frame['master_name']})")
    for col in ("node", "role", "link", "lag", "behind", "ops/s", "hit rate", "memory"):
        t.add_column(col, no_wrap=col in ("node", "role", "lag"))
    t.add_column("clients", justify="right")
    t.add_column("keys", justify="right")
    for n in frame["nodes"]:
        down = "[magenta]denied[/]" if n["denied"] else "[red]down[/]"
        role = "[bold]primary[/]" if n["primary"] else (n["role"] or f"{down} {n['error']}")
        if n["role"] == "master" and not n["primary"]:
            role = "[red]primary?[/]"
        link = {None: "-", True: "[green]up[/]", False: "[red]down[/]"}[n["link_up"]]
        hit = "-" if n["hit_rate"] is None else f"{n['hit_rate']:.1%}"
        t.add_row(
            n["name"],
            role,
            link,
            _lag(n),
            "-" if n["lag_bytes"] is None else f"{n['lag_bytes']} B",
            "-" if n["ops_per_s"] is None else f"{n['ops_per_s']:.0f}",
            hit,
            _mem(n),
            "-" if n["clients"] is None else f"{n['clients']:.0f}",
            "-" if n["keys"] is None else str(n["keys"]),
        )
    st = Table(box=box.SIMPLE, title="Sentinels", title_justify="left")
    for col in ("sentinel", "state", "names primary", "epoch", "flags"):
        st.add_column(col, no_wrap=col == "sentinel")
    feed = frame.get("sentinel_feed") or {}
    for s in frame["sentinels"]:
        state = "[green]up[/]" if s["up"] else f"[red]down[/] {s['error'] or ''}"
        if feed and not feed.get(s["name"], False):
            state += " [yellow](no events)[/]"
        st.add_row(
            s["name"],
            state,
            str(s["primary"] or "-"),
            "-" if s["config_epoch"] is None else str(s["config_epoch"]),
            ",".join(s["flags"]) or "-",
        )
    ev = Text()
    for e in scroll:
        loud = any(e["name"].startswith(p) for p in LOUD)
        line = f"{fmt_ts(e['ts'])}  {e['sentinel']:<12} {e['name']} {e['text']}\n"
        ev.append(line, style="bold red" if loud else "")
    parts: list[Any] = [head, t, st]
    notes = [hb["note"], *frame["problems"]]
    parts.append(Text("\n".join(f"! {p}" for p in notes if p), style="yellow"))
    parts.append(Text("Sentinel events (pub/sub, newest last):", style="bold"))
    parts.append(ev if scroll else Text("  (none yet)", style="dim"))
    return Group(*parts)
