"""Which server each process runs, and the coordinated-failover capability: from data, then
against real Redis 7.0, Valkey 8.1 and Valkey 9 Sentinels (the probe must never fail over)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha.facts import ClusterFacts, SentinelFacts, argument_tokens
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import write_lab_inventory
from redis_ha.servers import coordinated_failover, identity, label, version_tuple

REDIS_70 = {"redis_version": "7.0.15", "process_id": 1}
VALKEY_81 = {"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "8.1.8"}


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (REDIS_70, ("redis", "7.0.15")),
        (VALKEY_81, ("valkey", "8.1.8")),  # not "7.2.4": that is Valkey's compatibility field
        ({"server_name": "valkey", "redis_version": "7.2.4"}, ("valkey", "7.2.4")),
        ({}, ("redis", None)),
    ],
)
def test_identity_reads_the_servers_own_version(info: dict[str, Any], expected: tuple) -> None:
    assert identity(info) == expected


@pytest.mark.parametrize(
    ("v", "t"),
    [("8.1.8", (8, 1, 8)), ("9.0.0-rc1", (9, 0, 0)), ("9.1", (9, 1)), ("", ()), (None, ())],
)
def test_version_tuple(v: str | None, t: tuple[int, ...]) -> None:
    assert version_tuple(v) == t


# COMMAND DOCS sentinel|failover as Valkey 9 answers it, in RESP2 (flat lists) and RESP3 (maps).
_V9_ARGS: list[Any] = [
    ["name", "primary-name", "type", "string", "display_text", "primary-name"],
    ["name", "coordinated", "type", "pure-token", "token", "COORDINATED", "flags", ["optional"]],
]
DOCS_V9_RESP2 = [
    "sentinel|failover",
    ["summary", "Forces a Sentinel failover.", "arguments", _V9_ARGS],
]
DOCS_V9_RESP3 = {
    "sentinel|failover": {
        "summary": "Forces a Sentinel failover.",
        "arguments": [dict(zip(a[::2], a[1::2], strict=True)) for a in _V9_ARGS],
    }
}
DOCS_V81 = ["sentinel|failover", ["arguments", [_V9_ARGS[0]]]]


@pytest.mark.parametrize(
    ("docs", "tokens"),
    [
        (DOCS_V9_RESP2, ["COORDINATED"]),
        (DOCS_V9_RESP3, ["COORDINATED"]),
        (DOCS_V81, []),
        ([], None),
    ],
)
def test_failover_option_tokens_from_command_docs(docs: Any, tokens: list[str] | None) -> None:
    assert argument_tokens(docs) == tokens


def _sentinel(
    name: str, server: str = "valkey", version: str = "9.1.2", **kw: Any
) -> SentinelFacts:
    kw.setdefault("failover_options", ["COORDINATED"])
    return SentinelFacts(
        name=name,
        address="127.0.0.1:1",
        up=kw.pop("up", True),
        server=server,
        version=version,
        **kw,
    )


def _facts(*sentinels: SentinelFacts) -> ClusterFacts:
    return ClusterFacts("inv", "mymaster", 0.0, 0, nodes=[], sentinels=list(sentinels))


@pytest.mark.parametrize(
    ("sentinels", "available", "says"),
    [
        ([_sentinel("s1"), _sentinel("s2"), _sentinel("s3")], True, "lists SENTINEL FAILOVER"),
        (
            [_sentinel("s1"), _sentinel("s2", version="8.1.8", failover_options=[])],
            False,
            "s2 (valkey 8.1.8): SENTINEL FAILOVER has no COORDINATED option",
        ),
        ([_sentinel("s1"), _sentinel("s2", up=False)], False, "s2 is down: cannot tell"),
        # No command docs (an old Sentinel, or an ACL): judged by version.
        ([_sentinel("s1", version="9.0.0", failover_options=None)], True, "valkey 9.0+ has it"),
        (
            [_sentinel("s1", version="8.1.8", failover_options=None)],
            False,
            "needs valkey 9.0 or later",
        ),
        (
            [_sentinel("s1", server="redis", version="7.0.15", failover_options=None)],
            False,
            "this server has no coordinated Sentinel failover",
        ),
        ([], False, ""),
    ],
)
def test_coordinated_failover_needs_every_sentinel(
    sentinels: list[SentinelFacts], available: bool, says: str
) -> None:
    cap = coordinated_failover(_facts(*sentinels))
    assert cap.available is available
    assert says in " | ".join(cap.reasons)
    assert cap.to_dict()["name"] == "coordinated-failover"


def _valkey9_folder(tmp_path: Path) -> str:
    """A folder holding only valkey-server (Valkey 9): Sentinels then run with `--sentinel`."""
    exe = Path(sys.prefix) / "valkey9" / "bin" / "valkey-server"
    folder = tmp_path / "valkey9"
    folder.mkdir()
    if not exe.exists():
        pytest.skip(f"Valkey 9 not installed ({exe} missing): ./scripts/setup --valkey")
    (folder / "valkey-server").symlink_to(exe.resolve())
    return str(folder)


@pytest.mark.parametrize(
    ("server", "available"), [("redis", False), ("valkey", False), ("valkey9", True)]
)
def test_detection_against_real_sentinels(
    server: str, available: bool, tmp_path: Path, binaries_of: Any
) -> None:
    """Redis 7.0 and Valkey 8.1 lack the coordinated failover, Valkey 9 has it; asking is inert."""
    value = _valkey9_folder(tmp_path) if server == "valkey9" else server
    bins = binaries_of(value)  # skips, loudly, when that server is not installed
    if server == "valkey9":
        assert bins.sentinel_flag and version_tuple(bins.version) >= (9, 0)
    lab = Lab(inventory.load(write_lab_inventory(tmp_path, single=False)), server=value)
    try:
        lab.up(timeout=60)
        before = factsmod.gather(lab.inv)
        cap = coordinated_failover(before)
        after = factsmod.gather(lab.inv)
    finally:
        lab.down()
    assert cap.available is available, cap.reasons
    assert {label(p.server, p.version) for p in (*before.nodes, *before.sentinels)} == {bins.label}
    # The probe is read-only: no Sentinel started a failover or moved to a new epoch.
    for s in after.sentinels:
        assert s.up and s.config_epoch == 0 and not s.failing_over, s
        assert s.primary_name == "redis-1"
