"""Property-based tests (hypothesis, bounded): any input gives a result or a clear HAError,
never a traceback, and the decisions keep their invariants on any cluster picture.

Parsers: inventory, playbook, runbook, env file, app config. Decisions: health.assess, triage,
splitbrain.detect, safestart.decide, replica diagnose, the failover preflight and plans.
Invariants: no plan rebuilds (or fences away) the primary, no switch without an in-sync copy to
promote, and a switch always demotes the old primary (never two primaries left).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_ha import inventory
from redis_ha.actions import failover, replica
from redis_ha.actions import splitbrain as sbactions
from redis_ha.appconfig import envfile
from redis_ha.client import config_from_env
from redis_ha.diagnose import Evidence, diagnose
from redis_ha.errors import HAError
from redis_ha.facts import ClusterFacts
from redis_ha.health import EXIT_CODES, HEALTHY, assess
from redis_ha.inventory import Inventory
from redis_ha.lab.ports import lab_inventory_dict
from redis_ha.playbook import validate
from redis_ha.runbook import parse_text
from redis_ha.safestart import decide
from redis_ha.splitbrain import detect
from redis_ha.triage import SEVERITY_NAMES, triage

from .factories import healthy, view

# 60 examples a property keep `pytest -m "not lab"` fast; REDIS_HA_EXAMPLES=1000 for a deep run.
FAST = settings(
    max_examples=int(os.environ.get("REDIS_HA_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NODES = ["redis-1", "redis-2", "redis-3"]
SENTINELS = ["sentinel-1", "sentinel-2", "sentinel-3"]
ERRORS = [
    "connection refused (not running?)",
    "timed out (node hung or unreachable)",
    "authentication failed (wrong password?); check $REDIS_HA_PASSWORD",
    "permission denied (NOPERM no permissions to run 'info'); check the ACL user 'x'",
]


@pytest.fixture(scope="module")
def inv(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    d = tmp_path_factory.mktemp("prop")
    return inventory.from_dict(lab_inventory_dict(d), d / "inventory.yaml")


# --- cluster pictures -------------------------------------------------------------------------
node_patch = st.fixed_dictionaries(
    {},
    optional={
        "up": st.booleans(),
        "error": st.sampled_from(ERRORS),
        "role": st.sampled_from(["master", "replica", None]),
        "replicating_from": st.sampled_from([*NODES, None, "10.0.0.9:6379"]),
        "link_up": st.booleans(),
        "offset": st.one_of(st.none(), st.integers(-1, 5000)),
        "lag_bytes": st.one_of(st.none(), st.integers(0, 3_000_000)),
        "sync_in_progress": st.booleans(),
        "loading": st.booleans(),
        "keys": st.one_of(st.none(), st.integers(0, 50)),
        "replica_priority": st.one_of(st.none(), st.sampled_from([0, 1, 100])),
        "uptime_s": st.one_of(st.none(), st.integers(0, 10_000)),
    },
)
sentinel_patch = st.fixed_dictionaries(
    {},
    optional={
        "up": st.booleans(),
        "error": st.sampled_from(ERRORS),
        "primary_name": st.sampled_from([*NODES, None]),
        "flags": st.lists(st.sampled_from(["master", "s_down", "o_down", "failover_in_progress"])),
        "failover_state": st.sampled_from(["none", "", "wait_start", None]),
        "quorum_ok": st.booleans(),
        "config_epoch": st.one_of(st.none(), st.integers(0, 9)),
    },
)
pictures = st.tuples(
    st.sampled_from(NODES),
    st.lists(node_patch, min_size=3, max_size=3),
    st.lists(sentinel_patch, min_size=3, max_size=3),
)


def build(
    inv: Inventory, pic: tuple[str, list[dict[str, Any]], list[dict[str, Any]]]
) -> ClusterFacts:
    primary, npatch, spatch = pic
    over: dict[str, dict[str, Any]] = {}
    for name, p in zip(NODES, npatch, strict=True):
        over[name.replace("-", "_")] = dict(p)
    for name, p in zip(SENTINELS, spatch, strict=True):
        p = dict(p)
        if "primary_name" in p:
            pn = p["primary_name"]
            p["primary"] = inv.node(pn).address if pn else None
        over[name.replace("-", "_")] = p
    f = healthy(inv, primary, **over)
    for n in f.nodes:
        if n.up:
            n.error = None  # an answering node has no connection error
    return f


@FAST
@given(pic=pictures, before=st.one_of(st.none(), pictures))
def test_verdict_triage_and_detect_take_any_picture(inv: Inventory, pic: Any, before: Any) -> None:
    f = build(inv, pic)
    h = assess(inv, f)
    assert h.level in EXIT_CODES
    if h.level == HEALTHY:
        assert h.problems == [] and [n.name for n in f.claimed_primaries()] == [h.primary]
    if h.primary is not None:  # a usable primary is one the Sentinel majority names, up, master
        n = f.node(h.primary)
        assert n.up and n.role == "master"
    earlier = None if before is None else build(inv, before)  # a look before, any picture
    for finding in triage(inv, f, h, earlier):
        assert finding.severity in SEVERITY_NAMES and finding.title
    rep = detect(inv, f)
    assert rep is not None


@FAST
@given(pic=pictures, to=st.sampled_from([*NODES, None]))
def test_a_switch_is_planned_only_to_an_in_sync_copy_and_demotes_the_old(
    inv: Inventory, pic: Any, to: str | None
) -> None:
    v = view(inv, build(inv, pic))
    try:
        refusals = failover.preflight(v, to)
    except HAError:
        return
    if refusals:
        return
    h = v.health
    assert h.primary is not None and h.in_sync_replicas, "a switch needs an in-sync copy"
    assert to is None or (to != h.primary and to in h.in_sync_replicas)
    plan = failover.plan_switch(v, to)
    old = h.primary
    cmds = [(op.target, op.command) for op in plan.ops]
    assert (old, f"REPLICAOF {failover.PROMOTED}") in cmds  # never two primaries left
    pauses = [i for i, (t, c) in enumerate(cmds) if t == old and c.startswith("CLIENT PAUSE")]
    failover_at = next(i for i, (_, c) in enumerate(cmds) if c.startswith("SENTINEL FAILOVER"))
    assert len(pauses) == 1 and pauses[0] < failover_at  # writes pause before the promotion
    assert cmds[-1] == (old, "CLIENT UNPAUSE")  # the pause always ends


@FAST
@given(pic=pictures, node=st.sampled_from(NODES), outage=st.booleans())
def test_no_plan_rebuilds_the_primary(inv: Inventory, pic: Any, node: str, outage: bool) -> None:
    v = view(inv, build(inv, pic))
    primary = v.health.primary
    for fn in (replica.plan_unpromotable, replica.plan_restart):
        try:
            fn(v, node)
        except HAError:
            continue
        assert node != primary, f"{fn.__name__} planned on the primary {node}"
    # The rebuild's guard is the diagnosis: it lets a rebuild go on only for a node that is
    # neither the usable primary nor the one the Sentinel majority names, and never the only
    # in-sync copy unless the operator accepted the write outage.
    d = diagnose(inv, v.facts, v.health, node, Evidence(), allow_write_outage=outage)
    if not d.refusals:
        assert node != primary and inv.node(node).address != v.health.authoritative, d
        if not outage and node in v.health.in_sync_replicas:
            assert len(v.health.in_sync_replicas) > inv.settings.min_replicas_to_write, d


@FAST
@given(pic=pictures, auth=st.sampled_from(NODES), stale=st.lists(st.sampled_from(NODES)))
def test_split_brain_never_fences_or_demotes_the_authoritative(
    inv: Inventory, pic: Any, auth: str, stale: list[str]
) -> None:
    v = view(inv, build(inv, pic))
    for plan_fn in (
        lambda: sbactions.plan_fence(v, auth, stale),
        lambda: sbactions.plan_demote(v, auth, stale, salvaged=stale, fenced=stale),
    ):
        try:
            plan = plan_fn()
        except HAError:
            continue
        assert all(op.target != auth for op in plan.ops), plan.lines()


@FAST
@given(
    me=st.sampled_from(NODES),
    pic=pictures,
    bootstrap=st.booleans(),
)
def test_safestart_never_starts_empty_as_primary_over_data(
    inv: Inventory, me: str, pic: Any, bootstrap: bool
) -> None:
    f = build(inv, pic)
    mine = inv.node(me).address
    peers = [n for n in f.nodes if n.name != me]
    d = decide(mine, f.sentinels, peers, n_sentinels=3, bootstrap=bootstrap)
    assert d.mode in ("primary", "replica", "handover", "configured")
    if d.mode == "primary":
        assert not any(p.up and (p.keys or 0) > 0 for p in peers)
    if d.mode == "replica":
        assert d.replicaof != mine


# --- parsers ----------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.text(max_size=12),
    st.floats(allow_nan=True),
)
json_like = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=20,
)


@FAST
@given(mut=st.dictionaries(st.sampled_from(list(lab_inventory_dict(Path("/x")))), json_like))
def test_inventory_takes_any_mapping(tmp_path: Path, mut: dict[str, Any]) -> None:
    d = {**lab_inventory_dict(tmp_path), **mut}
    try:
        inv = inventory.from_dict(d, tmp_path / "inventory.yaml")
    except HAError as e:
        assert str(e)
    else:
        assert inv.nodes and inv.master_name


@FAST
@given(doc=json_like)
def test_inventory_takes_any_document(tmp_path: Path, doc: Any) -> None:
    try:
        inventory.from_dict(doc, tmp_path / "inventory.yaml")
    except HAError as e:
        assert str(e)


@FAST
@given(text=st.text(max_size=400))
def test_inventory_file_takes_any_text(tmp_path: Path, text: str) -> None:
    p = tmp_path / "inv.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        inventory.load(p)
    except HAError as e:
        assert str(e)


md_lines = st.sampled_from(
    ["# T", "## 1. Step {#a}", "## 2. B {#b}", "## C", "---", "when: now", "text", "", "{#x}"]
)


@FAST
@given(lines=st.lists(st.one_of(md_lines, st.text(max_size=30)), max_size=20))
def test_runbook_parser_takes_any_markdown(tmp_path: Path, lines: list[str]) -> None:
    rb, problems = parse_text("\n".join(lines), tmp_path / "x.md")
    assert rb is not None and isinstance(problems, list)


steps = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "action", "args", "guard", "verify", "undo", "confirm", "timeout"]),
        json_like,
        max_size=5,
    ),
    max_size=4,
)


@FAST
@given(
    top=st.dictionaries(st.sampled_from(["runbook", "changes", "budget", "x"]), json_like),
    st_=steps,
    raw=st.booleans(),
    text=st.text(max_size=200),
)
def test_playbook_validation_takes_any_yaml(
    tmp_path: Path, top: dict[str, Any], st_: list[Any], raw: bool, text: str
) -> None:
    (tmp_path / "rb.md").write_text("# T\n\n## 1. A {#a}\n\ntext\n")
    p = tmp_path / "pb.yaml"
    doc = text if raw else yaml.safe_dump({"runbook": "rb.md", **top, "steps": st_})
    p.write_text(doc, encoding="utf-8", errors="surrogatepass")
    try:
        pb, problems = validate(p)
    except HAError as e:
        assert str(e)
        return
    assert pb is not None or problems


env_lines = st.sampled_from(
    ["A=1", "export B='x y'", 'C="a\\nb"', "D=${A}", "# c", "", "E", "F='open", "=v", "G=\\"]
)


@FAST
@given(lines=st.lists(st.one_of(env_lines, st.text(max_size=20)), max_size=12))
def test_env_file_parser_takes_any_text(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        vals = envfile.values(text)
        bindings = envfile.parse(text)
    except HAError as e:
        assert str(e)
        return
    assert isinstance(vals, dict) and isinstance(bindings, list)
    try:
        out = envfile.render(text, {"REDIS_URL": "redis://127.0.0.1:1/0", "A": None})
    except HAError:
        return
    assert envfile.values(out).get("REDIS_URL") == "redis://127.0.0.1:1/0"


@FAST
@given(
    env=st.dictionaries(
        st.sampled_from(
            ["REDIS_SENTINELS", "REDIS_MASTER_NAME", "REDIS_URL", "REDIS_PASSWORD", "X"]
        ),
        st.text(max_size=30),
    )
)
def test_app_config_takes_any_environment(env: dict[str, str]) -> None:
    try:
        cfg = config_from_env(env)
    except HAError as e:
        assert str(e)
        return
    assert cfg.sentinels or cfg.url
