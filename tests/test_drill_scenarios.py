"""Every drill scenario, run with `drill.run --auto`: the runbooks' acceptance tests.

Each test injects a real fault under app traffic and runs the recommended response as an
operator would (dry run, then `--yes`); it passes only when the scorecard does: the cluster
resolved and no acknowledged write lost. A runbook that stops working fails here. One
partitionable lab (fast Sentinel timings) is shared; each drill brings it to a known state first.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from redis_ha import drills, inventory
from redis_ha.cli.app import ns
from redis_ha.lab import partition
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke

RATE = "200"  # app requests per second during each drill (2 shared cores)


@pytest.fixture(scope="module")
def drill_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(inventory.load(partition.write_partitionable_inventory(tmp_path_factory.mktemp("d"))))
    try:
        lab.up(timeout=60)
        yield lab
    finally:
        st = drills.load_state(lab.inv)
        if st:  # a test failed half-way: never leave the simulator running
            drills.stop_traffic(st, timeout=5)
        lab.down()


def test_every_step_names_a_real_task_and_its_options() -> None:
    for sc in drills.SCENARIOS.values():
        assert sc.auto, f"{sc.name} has no recommended response"
        assert sc.procedure, sc.name
        for step in sc.auto:
            assert (step.task is None) != (step.do is None), step
            if step.task is None:
                continue
            try:
                body = ns[step.task].body  # a collection's name gives its default task
            except ValueError:
                pytest.fail(f"{sc.name}: no task {step.task!r}")
            params = inspect.signature(body).parameters
            for opt, _ in step.args:
                assert opt in params, f"{sc.name}: {step.task} has no --{opt}"
            assert "dry_run" in params, f"{step.task} cannot rehearse (--dry-run)"
            assert ("yes" in params) == step.yes, f"{sc.name}: {step.task} --yes mismatch"
        done = {s.task for s in sc.auto if s.task}
        tasks_of = {"check": "health-check", "failover.verify": "failover-automatic",
                    "failover.manual": "failover-manual", "replica.rebuild": "replica-rebuild",
                    "splitbrain.recover": "split-brain", "rollback": "rollback",
                    "sentinel.repair": "sentinel-repair", "memory.relieve": "memory-pressure",
                    "config.converge": "config-drift"}  # fmt: skip
        assert {tasks_of[t] for t in done} & set(sc.expected), sc.name


def test_list_json_shape() -> None:
    r = run_invoke("drill.list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == list(drills.SCENARIOS)
    assert all(set(row) == {"name", "difficulty", "description"} for row in rows)
    assert {row["difficulty"] for row in rows} <= {"easy", "medium", "hard"}
    assert len(rows) >= 13


@pytest.mark.lab
@pytest.mark.drill
@pytest.mark.parametrize("scenario", list(drills.SCENARIOS))
def test_auto_drill_passes(drill_lab: Lab, scenario: str) -> None:
    r = run_invoke(
        "drill.run", "--scenario", scenario, "--auto", "--json", "--rate", RATE,
        inventory=drill_lab.inv.path, timeout=280,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    card = json.loads(r.stdout[r.stdout.rindex("\n{") + 1 :] if "\n{" in r.stdout else r.stdout)
    detail = json.dumps(card["items"], indent=1) + json.dumps(card["response"], indent=1)
    assert r.returncode == 0 and card["passed"], detail + r.stdout[-3000:]
    assert card["mode"] == "auto" and card["scenario"] == scenario
    sc = drills.SCENARIOS[scenario]
    # First what the on-call runs: incident's first finding names a runbook that resolves it.
    first = card["response"][0]
    assert first["step"].startswith("incident") and first["ok"], first
    assert first["runbook"] in sc.expected, first  # every one: a runbook that resolves it
    assert [s["ok"] for s in card["response"]] == [True] * (len(sc.auto) + 1), detail
    by = {i["criterion"]: i for i in card["items"]}
    assert by["no acknowledged write lost"]["points"] == 15, by
    assert by["used the runbook"]["points"] == 20, by  # the runbook's run completed
    assert Path(card["saved"]).exists()
    assert drills.load_state(drill_lab.inv) is None


@pytest.mark.lab
def test_trainee_drill_from_other_processes_and_history(drill_lab: Lab, tmp_path: Path) -> None:
    env = {"REDIS_HA_JOURNAL_DIR": str(tmp_path / "journal"), "REDIS_HA_OPERATOR": "ann"}
    path = drill_lab.inv.path
    r = run_invoke(
        "drill.run", "--scenario", "replica-crash", "--rate", RATE, inventory=path, env=env
    )
    assert r.returncode == 0, r.stderr
    assert "DRILL replica-crash" in r.stdout and "drill.score" in r.stdout
    state = drills.load_state(drill_lab.inv)
    assert state is not None and state["mode"] == "trainee" and state["operator"] == "ann"
    node = state["node"]
    assert drill_lab.pid(node) is None  # really crashed
    # The trainee, in other processes: rehearse, rebuild, then ask for the score.
    assert (
        run_invoke(
            "replica.rebuild", "--node", node, "--dry-run", inventory=path, env=env
        ).returncode
        == 0
    )
    done = run_invoke(
        "replica.rebuild", "--node", node, "--yes", inventory=path, env=env, timeout=180
    )
    assert done.returncode == 0, done.stdout[-2000:]
    r = run_invoke("drill.score", "--json", inventory=path, env=env, timeout=120)
    card = json.loads(r.stdout)
    assert r.returncode == 0 and card["passed"] and card["score"] == 100, card
    assert card["operator"] == "ann" and card["mode"] == "trainee"

    r = run_invoke("drill.history", "--json", "--operator", "ann", env=env)
    assert r.returncode == 0, r.stderr
    hist = json.loads(r.stdout)
    assert [(h["scenario"], h["score"], h["operator"]) for h in hist] == [
        ("replica-crash", 100, "ann")
    ]
    assert hist[0]["saved"] == card["saved"]
    r = run_invoke("drill.history", env=env)
    assert r.returncode == 0 and "Drills of ann" in r.stdout and "replica-crash" in r.stdout
    r = run_invoke("drill.history", "--operator", "bob", "--json", env=env)
    assert json.loads(r.stdout) == []


def test_run_refuses_bad_input_without_touching(tmp_path: Path) -> None:
    r = run_invoke("drill.run", "--scenario", "nope", "--auto")
    assert (
        r.returncode != 0 and "unknown scenario 'nope'" in r.stderr and "Traceback" not in r.stderr
    )
    d = yaml.safe_load(partition.write_partitionable_inventory(tmp_path).read_text())
    d["lab"] = False
    p = tmp_path / "prod.yaml"
    p.write_text(yaml.safe_dump(d))
    r = run_invoke("drill.run", "--scenario", "replica-crash", "--auto", inventory=p)
    assert r.returncode != 0 and "not marked 'lab: true'" in r.stderr
    assert not Path(d["lab_dir"]).exists()
    assert os.environ.get("REDIS_HA_JOURNAL_DIR")
