"""The switch's Sentinel phase: following the leader's INFO cycle, sending SENTINEL FAILOVER to
a Sentinel that answers, and reading who a majority names.

A Sentinel that hangs (SIGSTOP, a stalled host) with SENTINEL FAILOVER in its socket buffer
carries it out when it wakes: measured on redis 7.0.15, neither closing nor resetting (RST) the
connection withdraws a command the kernel already queued. A stop of more than 2 s also puts it
in TILT for 30 s (SENTINEL_TILT_PERIOD), so the failover then starts ~30 s after the wake, when
nobody demotes the old primary but Sentinel's own +convert-to-slave ~10 s later: two primaries
for ~10 s, 40 s after the tool gave up. Hence: ping just before sending, and when the command
goes unanswered, send it to the next Sentinel that answers so the switch completes (and the
woken one learns the new config epoch) rather than leaving a failover queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from redis_ha import cancel
from redis_ha import health as healthmod
from redis_ha.cli.names import command
from redis_ha.errors import ClusterError
from redis_ha.inventory import Inventory

# Sentinel's INFO cycle (sentinel.c, sentinelSendPeriodicCommands): a replica gets INFO every
# 10 s, every 1 s once its master is failing over, at the first ~50-100 ms timer tick after the
# period since the last reply has passed; the promotion shows in the first reply after the
# failover's REPLICAOF NO ONE, sent 2-3 ticks after SENTINEL FAILOVER. Sending SENTINEL FAILOVER
# when the leader's last INFO reply to the target is AIM_INFO_AGE_MS old makes that reply the
# one ~1000 - AIM ms later instead of the one ~1 s after a reply sent at the first tick.
INFO_PERIOD_MS = 10000  # SENTINEL_INFO_PERIOD: the cycle before the failover starts
FAILOVER_INFO_PERIOD_MS = 1000  # the cycle once it has started
AIM_INFO_AGE_MS = 780  # hit unless 2 ticks take > 220 ms; measured: a miss at 921, hits at 793-891
OVERSLEPT_MS = 40  # woken later than this past the aim: wait for the next reply instead
PHASE_SLACK_MS = 1000  # the next INFO reply may come this late (timer jitter, a busy Sentinel)


def sentinel_replicas(c: redis.Redis, master: str) -> dict[str, dict[str, Any]]:
    """One Sentinel's SENTINEL REPLICAS, by replica address ("host:port")."""
    out = {}
    for r in c.execute_command("SENTINEL", "REPLICAS", master):
        d = r if isinstance(r, dict) else dict(zip(r[::2], r[1::2], strict=False))
        out[f"{d.get('ip')}:{d.get('port')}"] = d
    return out


def majority_names(inv: Inventory, sentinels: dict[str, redis.Redis], exclude: str) -> str | None:
    """The node a majority of Sentinels name as primary now, if it is not `exclude`.

    Asked live (this is the switch's hot loop); the votes are judged by the one rule,
    `health.majority_choice`."""
    votes: dict[str, int] = {}
    for c in sentinels.values():
        try:
            addr = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", inv.master_name)
        except (redis.RedisError, OSError):
            continue
        if addr:
            a = f"{addr[0]}:{addr[1]}"
            votes[a] = votes.get(a, 0) + 1
    name = inv.name_of(healthmod.majority_choice(votes, len(inv.sentinels)))
    return name if name != exclude else None


def fire_in_s(age_ms: float, aim_ms: float) -> float | None:
    """Seconds to wait before SENTINEL FAILOVER when the last INFO reply is `age_ms` old: the
    rest of the way to `aim_ms`, or None when this cycle's moment has passed (wait for the next
    reply). Pure, so the timing rule is tested apart from the clock."""
    return max(0.0, (aim_ms - age_ms) / 1000) if age_ms <= aim_ms else None


@dataclass
class Phase:
    """Where the leader's INFO cycle for the target stood when the switch began."""

    waited_s: float
    age_ms: float | None  # age of the last INFO reply when the wait ended (None: unreadable)
    on_time: bool  # False: the bound was hit (or nothing readable), sent at once as before


def follow_info_phase(
    sc: redis.Redis, master: str, addrs: list[str], aim_ms: int, wait_max_s: float
) -> Phase:
    """Wait (writes flowing) until the leader's last INFO reply to the target replica(s) is
    `aim_ms` old; at most `wait_max_s` (one 10 s INFO cycle and its slack).

    The reply time is learnt from `info-refresh` (ms since the last reply) read at the midpoint
    of each request; with several candidates the oldest reply is followed. Far from the next
    reply it sleeps, near it polls every 10 ms, so a cycle's jitter is seen, not guessed."""
    t0 = time.monotonic()
    period = INFO_PERIOD_MS / 1000
    while True:
        a = time.monotonic()
        try:
            rows = sentinel_replicas(sc, master)
            ages = [int(rows[x]["info-refresh"]) for x in addrs if x in rows]
        except (redis.RedisError, OSError, KeyError, ValueError):
            ages = []
        now = time.monotonic()
        if not ages:
            return Phase(round(now - t0, 3), None, on_time=False)
        last = (a + now) / 2 - max(ages) / 1000
        wait = fire_in_s((now - last) * 1000, aim_ms)
        if wait is not None:
            cancel.sleep(wait)
            done = time.monotonic()
            age = (done - last) * 1000
            if age <= aim_ms + OVERSLEPT_MS:
                return Phase(round(done - t0, 3), round(age), on_time=True)
            now = done  # overslept (a busy machine): this cycle's moment has passed
        if now - t0 > wait_max_s:
            return Phase(round(now - t0, 3), round((now - last) * 1000), on_time=False)
        # sleep until 0.2 s before the reply is due, then poll
        cancel.sleep(min(0.5, max(0.01, last + period - 0.2 - now)))


@dataclass
class Sent:
    """Where SENTINEL FAILOVER went: the Sentinel that accepted it (None: none did), the ones
    that did not answer it (it may still be carried out there) and the ones that failed a ping
    just before (nothing sent to them)."""

    via: str | None
    queued: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)

    def hung(self) -> set[str]:
        """Sentinels not to poll again in this switch: each poll would wait out its timeout."""
        return {*self.queued, *self.silent}


def send_failover(
    scs: dict[str, redis.Redis],
    order: list[str],
    master: str,
    before_send: Callable[[], None] | None = None,
) -> Sent:
    """SENTINEL FAILOVER to the first Sentinel in `order` that answers a ping right before it and
    then the command; a Sentinel that answers neither is skipped for the next one. `before_send`
    (a test hook) runs between the first one's ping and its command.

    A refusal (-INPROG, -NOGOODSLAVE) is final: a ClusterError, nothing switched."""
    sent = Sent(via=None)
    for name in order:
        c = scs[name]
        try:
            c.ping()
        except (redis.RedisError, OSError):
            sent.silent.append(name)
            continue
        if before_send is not None and name == order[0]:
            before_send()
        try:
            c.execute_command("SENTINEL", "FAILOVER", master)
        except redis.ResponseError as e:
            raise ClusterError(f"{name} refused SENTINEL FAILOVER: {e}") from None
        except (redis.RedisError, OSError):
            sent.queued.append(name)
            continue
        sent.via = name
        return sent
    return sent


def queued_warning(sent: Sent) -> str:
    """What an operator must know about Sentinels left holding an unanswered SENTINEL FAILOVER."""
    names = ", ".join(sent.queued)
    if sent.via is not None:  # measured: the woken one learns the new epoch, no second failover
        return (
            f"SENTINEL FAILOVER to {names} went unanswered (it went to {sent.via} instead); "
            f"check {names} answers again (`{command('failover.verify')}`)"
        )
    return (
        f"SENTINEL FAILOVER to {names} went unanswered: if it hangs it carries it out when it "
        "wakes (after up to 30 s in TILT); restart it before it wakes (a restart drops the "
        f"queued command), then run `{command('failover.verify')}`"
    )
