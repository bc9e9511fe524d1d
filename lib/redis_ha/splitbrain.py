"""Split-brain: find it from facts, and decide what to salvage. Pure functions, tested from data.

Split-brain in Sentinel is more than one node acting as primary: an old primary cut off from the
Sentinels but still reachable by some clients, a frozen primary that came back, a replica promoted
by hand. The Sentinels' majority (highest config epoch on a tie) is what clients are sent to, so
it is the authoritative primary; every other self-declared primary is stale, and the writes it
acknowledged vanish when Sentinel demotes it. Sentinels that disagree, or that carry peers which
no longer exist, are the other half of the problem: they are what the next failover votes with.

A node that is simply down is not split-brain, and is reported as a note, not an inconsistency.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_ha.choices import DEFAULT_POLICY as DEFAULT_POLICY
from redis_ha.choices import SALVAGE_POLICIES as POLICIES
from redis_ha.facts import ClusterFacts, NodeFacts, SentinelFacts
from redis_ha.health import authoritative_primary, majority
from redis_ha.inventory import Inventory, same_host

SPLIT, DISAGREE, STALE_PEER, NOTE = "split-brain", "disagreement", "stale-peer", "note"


@dataclass
class Finding:
    kind: str  # SPLIT | DISAGREE | STALE_PEER | NOTE
    text: str
    node: str | None = None


@dataclass
class Report:
    """What `splitbrain.detect` prints; `consistent` decides the exit code."""

    authoritative: str | None  # node name (or address when outside the inventory)
    authoritative_address: str | None
    votes: int
    sentinels_total: int
    primaries: list[dict[str, Any]]
    sentinels: list[dict[str, Any]]
    stale_primaries: list[str]
    disagreeing_sentinels: list[str]
    stale_peer_sentinels: list[str]
    partitioned: list[str]  # nodes that answer us but that the Sentinels cannot reach
    findings: list[Finding] = field(default_factory=list)
    elapsed_ms: int = 0

    @property
    def split_brain(self) -> bool:
        return any(f.kind == SPLIT for f in self.findings)

    @property
    def consistent(self) -> bool:
        return not any(f.kind != NOTE for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.consistent else 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["split_brain"] = self.split_brain
        d["consistent"] = self.consistent
        d["problems"] = [f.text for f in self.findings if f.kind != NOTE]
        d["notes"] = [f.text for f in self.findings if f.kind == NOTE]
        return d


def _flags(entry: dict[str, Any]) -> list[str]:
    return [f for f in str(entry.get("flags", "")).split(",") if f]


def stale_peers(inv: Inventory, s: SentinelFacts) -> list[str]:
    """Peers a Sentinel lists that are not (or no longer) part of this cluster, in plain words."""
    out: list[str] = []
    self_host, _, self_port = s.address.rpartition(":")
    seen: dict[str, str] = {}
    for entry in s.sentinels:
        addr = f"{entry.get('ip')}:{entry.get('port')}"
        runid = str(entry.get("runid", "?"))
        host, port = str(entry.get("ip")), int(entry.get("port") or 0)
        if port == int(self_port) and same_host(host, self_host):
            out.append(f"lists itself ({addr}) as a peer")
        elif not any(e.port == port and same_host(e.host, host) for e in inv.sentinels):
            out.append(f"lists a Sentinel {addr} (id {runid[:8]}) that is not in the inventory")
        elif addr in seen:
            out.append(f"lists {addr} twice (ids {seen[addr][:8]} and {runid[:8]})")
        seen.setdefault(addr, runid)
    if s.num_other_sentinels is not None and s.num_other_sentinels > len(inv.sentinels) - 1:
        out.append(
            f"counts {s.num_other_sentinels} other Sentinels, the inventory has "
            f"{len(inv.sentinels) - 1}"
        )
    for entry in s.replicas:
        addr = f"{entry.get('ip')}:{entry.get('port')}"
        if inv.name_of(addr) == addr:
            out.append(f"lists a replica {addr} that is not a node of the inventory")
    return sorted(set(out))


def _unreachable_by_sentinels(inv: Inventory, facts: ClusterFacts, n: NodeFacts) -> bool:
    """Every Sentinel that lists this node sees it down, although it answers us."""
    views = []
    for s in facts.sentinels:
        if not s.up:
            continue
        if s.primary_name == n.name:
            views.append("s_down" in s.flags or "o_down" in s.flags)
        for entry in s.replicas:
            if inv.name_of(f"{entry.get('ip')}:{entry.get('port')}") == n.name:
                flags = _flags(entry)
                views.append("s_down" in flags or "disconnected" in flags)
    return bool(views) and all(views)


def detect(inv: Inventory, facts: ClusterFacts) -> Report:
    """Self-declared primaries, each Sentinel's view, the authoritative primary, findings."""
    findings: list[Finding] = []
    auth_addr, votes = authoritative_primary(facts)
    auth = inv.name_of(auth_addr) if auth_addr else None
    s_up = [s for s in facts.sentinels if s.up]

    for n in facts.nodes:
        if not n.up:
            findings.append(Finding(NOTE, f"{n.name} ({n.address}) is down: {n.error}", n.name))
    for s in facts.sentinels:
        if not s.up:
            findings.append(Finding(NOTE, f"{s.name} ({s.address}) is down: {s.error}", s.name))
        elif s.error:
            findings.append(Finding(DISAGREE, f"{s.name}: {s.error}", s.name))

    # The authoritative primary and who disagrees with it.
    auth_epoch = max((s.config_epoch or 0 for s in s_up if s.primary == auth_addr), default=None)
    disagreeing: list[str] = []
    if s_up and auth_addr is None:
        said = ", ".join(f"{s.name} says {s.primary_name or 'nothing'}" for s in s_up)
        findings.append(
            Finding(
                DISAGREE,
                f"no majority of Sentinels ({majority(len(facts.sentinels))} of "
                f"{len(facts.sentinels)}) agrees on a primary: {said}",
            )
        )
    for s in s_up:
        if auth_addr and s.primary != auth_addr:
            disagreeing.append(s.name)
            findings.append(
                Finding(
                    DISAGREE,
                    f"{s.name} believes the primary is {s.primary_name or 'nothing'} "
                    f"(epoch {s.config_epoch}); the majority says {auth} (epoch {auth_epoch})",
                    s.name,
                )
            )
        if s.failover_state and s.failover_state not in ("none", ""):
            findings.append(
                Finding(NOTE, f"{s.name}: failover in progress ({s.failover_state})", s.name)
            )
    if auth_addr and auth == auth_addr:
        findings.append(
            Finding(DISAGREE, f"the Sentinels' primary {auth_addr} is not a node of this inventory")
        )

    # Self-declared primaries.
    claimed = facts.claimed_primaries()
    stale: list[str] = []
    by_name = {n.name: n for n in facts.nodes}
    a_node = by_name.get(auth) if auth else None
    if a_node and a_node.up and a_node.role != "master":
        findings.append(
            Finding(
                SPLIT if len(claimed) >= 1 else DISAGREE,
                f"the Sentinels name {auth} as primary but it is a replica of "
                f"{a_node.replicating_from}",
                auth,
            )
        )
    for n in claimed:
        if auth is not None and n.name == auth:
            continue
        if auth is None and len(claimed) == 1:
            continue  # no majority to compare with: reported above as a disagreement
        stale.append(n.name)
        need = int(n.config.get("min-replicas-to-write", inv.settings.min_replicas_to_write) or 0)
        good = n.good_replicas if n.good_replicas is not None else len(n.replicas)
        writes = (
            "it accepts writes now"
            if good >= need
            else f"it refuses writes now ({good} good replica(s), needs {need})"
        )
        findings.append(
            Finding(
                SPLIT,
                f"{n.name} says it is a primary ({n.keys} keys, offset {n.offset}) but "
                f"{'the Sentinel majority names ' + str(auth) if auth else 'so does another node'}"
                f": {writes}; whatever it acknowledged since the split is lost when it is demoted "
                f"(split-brain)",
                n.name,
            )
        )

    # Stale peers.
    stale_peer_sentinels = []
    for s in s_up:
        for text in stale_peers(inv, s):
            findings.append(Finding(STALE_PEER, f"{s.name} {text}", s.name))
            if s.name not in stale_peer_sentinels:
                stale_peer_sentinels.append(s.name)

    # Partitions: nodes that answer us but not the Sentinels.
    partitioned = [n.name for n in facts.nodes if n.up and _unreachable_by_sentinels(inv, facts, n)]
    for name in partitioned:
        findings.append(
            Finding(
                NOTE,
                f"{name} answers us but the Sentinels see it as down: a network partition "
                f"between it and the cluster is likely",
                name,
            )
        )
    if a_node is not None and not a_node.up:
        findings.append(
            Finding(NOTE, f"the primary {auth} named by the Sentinels does not answer us", auth)
        )

    primaries = [
        {
            "name": n.name,
            "address": n.address,
            "authoritative": n.name == auth,
            "offset": n.offset,
            "keys": n.keys,
            "connected_replicas": [r.name for r in n.replicas],
            "good_replicas": n.good_replicas,
            "run_id": n.run_id,
        }
        for n in claimed
    ]
    sentinels = [
        {
            "name": s.name,
            "address": s.address,
            "up": s.up,
            "primary": s.primary,
            "primary_name": s.primary_name,
            "config_epoch": s.config_epoch,
            "other_sentinels": s.num_other_sentinels,
            "flags": [f for f in s.flags if f],
            "agrees": bool(s.up and auth_addr and s.primary == auth_addr),
        }
        for s in facts.sentinels
    ]
    return Report(
        authoritative=auth,
        authoritative_address=auth_addr,
        votes=votes,
        sentinels_total=len(facts.sentinels),
        primaries=primaries,
        sentinels=sentinels,
        stale_primaries=stale,
        disagreeing_sentinels=disagreeing,
        stale_peer_sentinels=stale_peer_sentinels,
        partitioned=partitioned,
        findings=findings,
        elapsed_ms=facts.elapsed_ms,
    )


# --- salvage decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyVersion:
    """One side's copy of a key: enough to compare and to restore it."""

    type: str
    pttl: int  # -1 no expiry, -2 gone
    value: bytes | None = None  # strings only
    dump: bytes | None = None

    @property
    def ts(self) -> float | None:
        return session_ts(self.value)


@dataclass(frozen=True)
class Decision:
    action: str  # "copy" (absent on the authoritative) | "replace" | "keep" | "skip"
    reason: str

    @property
    def writes(self) -> bool:
        return self.action in ("copy", "replace")


def session_ts(value: bytes | None) -> float | None:
    """The `ts` field of a JSON session value (seconds since the epoch), if there is one."""
    if not value:
        return None
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    ts = doc.get("ts") if isinstance(doc, dict) else None
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return float(ts)
    return None


def same(a: KeyVersion, b: KeyVersion) -> bool:
    if a.type != b.type:
        return False
    if a.type == "string":
        return a.value == b.value
    return a.dump is not None and a.dump == b.dump


def decide(stale: KeyVersion, auth: KeyVersion | None, policy: str = DEFAULT_POLICY) -> Decision:
    """What to do with one key found on a stale primary. Never overwrites under the default.

    - authoritative-wins (default): copy keys the authoritative primary lacks; keep its value
      on any conflict.
    - newest-wins: as the default, but on a conflict the value with the newer `ts` wins; without
      a readable `ts` on both sides the authoritative value is kept.
    - stale-only: trust the stale side for every key it holds (use when the authoritative side
      took no real traffic, e.g. a promotion nobody wrote to).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r} (choose from {', '.join(POLICIES)})")
    if stale.pttl == -2:
        return Decision("skip", "expired on the stale primary")
    if auth is None or auth.pttl == -2:
        return Decision("copy", "only on the stale primary")
    if same(stale, auth):
        return Decision("skip", "identical on both sides")
    if policy == "authoritative-wins":
        return Decision("keep", "differs: the authoritative value is kept (authoritative-wins)")
    if policy == "stale-only":
        return Decision("replace", "differs: the stale value wins (stale-only)")
    s_ts, a_ts = stale.ts, auth.ts
    if s_ts is None or a_ts is None:
        return Decision("keep", "differs, no timestamp on both sides: authoritative kept")
    if s_ts > a_ts:
        return Decision("replace", f"the stale value is newer (ts {s_ts:.3f} > {a_ts:.3f})")
    return Decision("keep", f"the authoritative value is as new or newer (ts {a_ts:.3f})")
