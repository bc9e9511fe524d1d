"""The Sentinel event timeline of a failover, read from the Sentinels' own logs.

After Sentinel failed over by itself, on-call needs to know what happened and how long it took:
when the primary was first seen down (`+sdown`), when a majority agreed (`+odown`), who led the
failover, when the replica was promoted and when each Sentinel switched (`+switch-master`). Every
Sentinel logs these events with millisecond timestamps, so the logs are the best record. Parsing
is pure (lines in, events out) so it is tested from text.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis_ha.errors import HAError
from redis_ha.inventory import Endpoint, Inventory

# 9665:X 26 Nov 2026 12:53:32.241 # +promoted-slave slave 127.0.0.1:46665 ... @ mymaster ...
LINE_RE = re.compile(
    r"^(?P<pid>\d+):X (?P<ts>\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}) (?P<lvl>[#*.\-]) "
    r"(?P<msg>.*)$"
)
USER_FAILOVER = "Executing user requested FAILOVER"

# The events that tell the story of a failover, in the order they normally happen.
STORY = (
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "user-failover",
    "+new-epoch",
    "+try-failover",
    "+vote-for-leader",
    "+elected-leader",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+promoted-slave",
    "+failover-state-reconf-slaves",
    "+slave-reconf-sent",
    "+slave-reconf-done",
    "+failover-end",
    "+failover-end-for-timeout",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "+config-update-from",
    "+switch-master",
    "+convert-to-slave",
    "-tilt",
    "+tilt",
)


@dataclass
class Event:
    """One Sentinel event: when, which Sentinel, what."""

    ts: float  # seconds since the epoch (log time is the Sentinel host's local time)
    sentinel: str
    name: str  # "+switch-master", "user-failover", ...
    text: str  # the rest of the line

    @property
    def about_master(self) -> bool:
        return self.text.startswith("master ")

    def args(self) -> list[str]:
        return self.text.split()


@dataclass
class Failover:
    """One failover reconstructed from events, with its durations in seconds."""

    kind: str  # "automatic" | "manual (SENTINEL FAILOVER)"
    old_primary: str | None  # host:port
    new_primary: str | None
    leader: str | None
    first_sdown: float | None
    odown: float | None
    started: float | None
    promoted: float | None
    first_switch: float | None
    last_switch: float | None
    ended: float | None
    down_after_s: float
    events: list[Event] = field(default_factory=list)

    @property
    def crash_estimate(self) -> float | None:
        """When the primary most likely stopped answering: first +sdown minus down-after."""
        return self.first_sdown - self.down_after_s if self.first_sdown else None

    def durations(self) -> dict[str, float | None]:
        """The figures on-call reports; None where the events do not say."""

        def span(a: float | None, b: float | None) -> float | None:
            return round(b - a, 3) if a is not None and b is not None else None

        origin = self.crash_estimate if self.kind == "automatic" else self.started
        return {
            "detection_s": span(self.crash_estimate, self.first_sdown),
            "sdown_to_odown_s": span(self.first_sdown, self.odown),
            "start_to_promotion_s": span(self.started, self.promoted),
            "promotion_to_first_switch_s": span(self.promoted, self.first_switch),
            "until_first_sentinel_switched_s": span(origin, self.first_switch),
            "until_all_sentinels_switched_s": span(origin, self.last_switch),
            "failover_total_s": span(origin, self.ended or self.last_switch),
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["durations"] = self.durations()
        d["events"] = [asdict(e) for e in self.events]
        return d


def stamped(line: str) -> tuple[float, str] | None:
    """A Redis/Sentinel log line -> (its time, its message), or None for other lines."""
    m = LINE_RE.match(line.rstrip("\n"))
    if not m:
        return None
    try:
        dt = datetime.strptime(m["ts"], "%d %b %Y %H:%M:%S.%f")
    except ValueError:
        return None
    return dt.astimezone().timestamp(), m["msg"]


def parse_line(line: str, sentinel: str) -> Event | None:
    """One log line -> Event, or None for lines that are not events."""
    found = stamped(line)
    if found is None:
        return None
    ts, msg = found
    if msg.startswith(USER_FAILOVER):
        return Event(ts, sentinel, "user-failover", msg)
    if not msg or msg[0] not in "+-":
        return None
    name, _, rest = msg.partition(" ")
    return Event(ts, sentinel, name, rest)


def parse_log(text: str, sentinel: str) -> list[Event]:
    return [e for line in text.splitlines() if (e := parse_line(line, sentinel))]


LOG_LINES = 5000  # lines of each Sentinel's log read back: hours of a quiet Sentinel's events


def log_path(inv: Inventory, s: Endpoint) -> Path | None:
    """An explicit log file the tool can read here (`control.log_file`), else None."""
    explicit = s.control.get("log_file")
    return Path(str(explicit)) if explicit else None


def read_log(inv: Inventory, s: Endpoint, lines: int = LOG_LINES) -> list[str] | None:
    """A Sentinel's recent log: its `control.log_file`, else through its control backend
    (the lab's file, journalctl over ssh, `railway logs`, ...). None when it cannot be read."""
    from redis_ha import control

    p = log_path(inv, s)
    if p is not None:
        try:
            return p.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return None
    try:
        return control.for_node(inv, s).log_tail(s, lines)
    except HAError:
        return None


def read_events(inv: Inventory) -> tuple[list[Event], list[str]]:
    """Every Sentinel's events merged by time, and the Sentinels whose log could not be read."""
    events: list[Event] = []
    missing: list[str] = []
    for s in inv.sentinels:
        text = read_log(inv, s)
        if text is None:
            missing.append(s.name)
            continue
        events += [e for line in text if (e := parse_line(line, s.name))]
    events.sort(key=lambda e: e.ts)
    return events, missing


def _addr(host: str, port: str) -> str:
    return f"{host}:{port}"


def last_failover(
    events: list[Event], master_name: str, *, down_after_ms: int, failover_timeout_ms: int
) -> Failover | None:
    """The most recent failover of `master_name` that the events show, or None."""
    switches = [e for e in events if e.name == "+switch-master" and e.args()[:1] == [master_name]]
    if not switches:
        return None
    last = switches[-1]
    a = last.args()
    old, new = _addr(a[1], a[2]), _addr(a[3], a[4])
    # This failover's switches: the same change, seen by each Sentinel within failover-timeout.
    same: list[Event] = []
    floor = 0.0  # the previous failover's last switch: nothing before it belongs to this one
    for e in reversed(switches):
        if e.args()[1:5] == a[1:5] and last.ts - e.ts <= failover_timeout_ms / 1000 + 2:
            same.insert(0, e)
        else:
            floor = e.ts
            break
    first_switch = same[0].ts
    # Look back far enough to catch detection: down-after + failover-timeout before the switch.
    window_start = max(floor, first_switch - (down_after_ms + failover_timeout_ms) / 1000 - 1)
    window_end = last.ts + 2
    old_host, old_port = a[1], a[2]
    in_window = [e for e in events if window_start < e.ts <= window_end]

    def about_old(e: Event) -> bool:
        parts = e.args()
        return e.about_master and old_host in parts and old_port in parts

    starts = [e for e in in_window if e.name in ("+try-failover", "user-failover")]
    starts = [e for e in starts if e.ts <= first_switch]
    start = starts[0] if starts else None  # several Sentinels may try; the first one counts
    user = any(e.name == "user-failover" for e in starts)
    sdowns = [e for e in in_window if e.name == "+sdown" and about_old(e) and e.ts <= first_switch]
    odowns = [e for e in in_window if e.name == "+odown" and about_old(e)]
    promoted = [e for e in in_window if e.name == "+promoted-slave" and e.ts <= last.ts]
    ends = [e for e in in_window if e.name in ("+failover-end", "+failover-end-for-timeout")]
    leader = promoted[-1].sentinel if promoted else (start.sentinel if start else None)
    story = [e for e in in_window if e.name in STORY and e.name != "+new-epoch"]
    kind = "manual (SENTINEL FAILOVER)" if user and not odowns else "automatic"
    # An automatic failover starts from the first +sdown that led to it (the earliest in window).
    first_sdown = sdowns[0].ts if sdowns and kind == "automatic" else None
    return Failover(
        kind=kind,
        old_primary=old,
        new_primary=new,
        leader=leader,
        first_sdown=first_sdown,
        odown=odowns[0].ts if odowns else None,
        started=start.ts if start else None,
        promoted=promoted[-1].ts if promoted else None,
        first_switch=first_switch,
        last_switch=same[-1].ts,
        ended=ends[-1].ts if ends else None,
        down_after_s=down_after_ms / 1000,
        events=story,
    )


def fmt_ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
