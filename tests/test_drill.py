"""Training drills: scoring from facts (pure) and a whole drill on the real lab."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from redis_ha import drills
from redis_ha.health import Health
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import lab_inventory_dict

from .conftest import run_invoke


def health(ok: bool, primary: str = "redis-1") -> Health:
    return Health(
        level="healthy" if ok else "degraded",
        primary=primary,
        authoritative=None,
        quorum_ok=True,
        split_brain=False,
        sentinels_agree=True,
        problems=[] if ok else ["redis-2 (127.0.0.1:1) is down: connection refused"],
    )


STATE = {"started": 1000.0, "operator": "trainee", "primary": "redis-1"}
TRAFFIC_OK = {"missing_writes": 0, "missing_keys": 0, "failed": 0, "write_stall_s": 0.1}


def test_perfect_response_scores_full_marks() -> None:
    sc = drills.SCENARIOS["replica-crash"]
    runs = [
        {"procedure": "replica-rebuild", "dry_run": True, "result": "dry-run", "started": 1010.0},
        {"procedure": "replica-rebuild", "dry_run": False, "result": "completed", "started": 1020},
    ]
    card = drills.score(sc, STATE, health=health(True), runs=runs, traffic=TRAFFIC_OK, now=1100)
    assert card.score == card.max_score == 100
    assert card.passed


def test_unresolved_or_lossy_drills_do_not_pass() -> None:
    sc = drills.SCENARIOS["replica-crash"]
    card = drills.score(sc, STATE, health=health(False), runs=[], traffic=TRAFFIC_OK, now=1100)
    assert not card.passed and card.score < 50
    assert "redis-2" in card.items[0].note
    lossy = dict(TRAFFIC_OK, missing_writes=3)
    runs = [{"procedure": "replica-rebuild", "dry_run": False, "result": "completed"}]
    card = drills.score(sc, STATE, health=health(True), runs=runs, traffic=lossy, now=1100)
    assert not card.passed
    assert "3 lost" in card.items[-1].note


def test_switchover_must_move_the_primary_and_slow_or_failed_runs_cost() -> None:
    sc = drills.SCENARIOS["planned-switchover"]
    runs = [
        {"procedure": "failover-manual", "dry_run": False, "result": "refused", "started": 1001},
        {"procedure": "failover-manual", "dry_run": False, "result": "completed", "started": 1002},
    ]
    card = drills.score(
        sc, STATE, health=health(True, "redis-1"), runs=runs, traffic=TRAFFIC_OK, now=1000 + 400
    )
    by = {i.criterion: i for i in card.items}
    assert by["cluster healthy"].points == 0 and "still redis-1" in by["cluster healthy"].note
    assert by["no failed or abandoned runs"].points == 0
    assert by["time to resolve"].points == 0  # more than twice the 180 s par
    assert by["looked before acting (--dry-run first)"].points == 0


def test_a_whole_drill_on_the_lab(lab: Lab) -> None:
    path = lab.inv.path
    r = run_invoke("drill.start", "--scenario", "replica-crash", "--rate", "300", inventory=path)
    try:
        assert r.returncode == 0, r.stderr
        assert "DRILL replica-crash" in r.stdout and "is not answering" in r.stdout
        state = drills.load_state(lab.inv)
        assert state is not None
        node = state["node"]
        assert lab.pid(node) is None  # really crashed
        again = run_invoke("drill.start", "--scenario", "replica-crash", inventory=path)
        assert again.returncode != 0 and "already running" in again.stderr

        assert (
            run_invoke("replica.rebuild", "--node", node, "--dry-run", inventory=path).returncode
            == 0
        )
        done = run_invoke("replica.rebuild", "--node", node, "--yes", inventory=path, timeout=180)
        assert done.returncode == 0, done.stdout[-2000:]

        r = run_invoke("drill.score", "--json", inventory=path, timeout=120)
        card = json.loads(r.stdout)
        assert r.returncode == 0, card
        assert card["passed"] is True and card["score"] == 100, card
        assert Path(card["saved"]).exists()
        assert drills.load_state(lab.inv) is None
    finally:
        st = drills.load_state(lab.inv)
        if st:  # the test failed half-way: never leave the simulator running
            drills.stop_traffic(st, timeout=5)
            drills.state_path(lab.inv).unlink(missing_ok=True)


def test_score_without_a_drill_and_non_lab_inventories(lab: Lab, tmp_path: Path) -> None:
    r = run_invoke("drill.score", inventory=lab.inv.path)
    assert r.returncode != 0 and "no drill is running" in r.stderr
    d = lab_inventory_dict(tmp_path)
    d["lab"] = False
    p = tmp_path / "prod.yaml"
    p.write_text(yaml.safe_dump(d))
    r = run_invoke("drill.start", "--scenario", "replica-crash", inventory=p)
    assert r.returncode != 0 and "not marked 'lab: true'" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_invoke("drill.start", "--scenario", "nope", inventory=lab.inv.path)
    assert r.returncode != 0 and "unknown scenario 'nope'" in r.stderr
