"""`runbooks.check`: the repository's pairs are consistent, and each kind of mistake is named
precisely (file, line, what) on tmp copies of the test pair."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from redis_ha import playbook as playbookmod
from redis_ha import runbook as runbookmod

from .conftest import ROOT, run_invoke

DATA = ROOT / "tests" / "data"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A tmp copy of the test pair: (runbook, playbook)."""
    for sub in ("runbooks", "playbooks"):
        shutil.copytree(DATA / sub, tmp_path / sub)
    return (
        tmp_path / "runbooks" / "priority-change.md",
        tmp_path / "playbooks" / "priority-change.yaml",
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def problems(pb: Path) -> list[str]:
    return [str(p) for p in playbookmod.check_all(pb.parent.parent)]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def test_repository_pairs_are_consistent() -> None:
    assert [str(p) for p in playbookmod.check_all()] == []
    r = run_invoke("runbooks.check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "consistent" in r.stdout


def test_test_pair_is_consistent(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    assert problems(pb) == []


def test_step_missing_in_playbook(pair: tuple[Path, Path]) -> None:
    rb, pb = pair
    text = pb.read_text()
    start = text.index("  - id: check-priority")
    end = text.index("  - id: restore")
    pb.write_text(text[:start] + text[end:])
    line = line_of(rb, "{#check-priority}")
    assert problems(pb) == [
        f"{rb}:{line}: step 'check-priority' has no playbook step in priority-change.yaml"
    ]


def test_step_missing_in_runbook(pair: tuple[Path, Path]) -> None:
    rb, pb = pair
    edit(rb, "## 3. Check the new priority {#check-priority}", "## 3. Check the new priority")
    line = line_of(pb, "- id: check-priority")
    assert problems(pb) == [
        f"{pb}:{line}: step 'check-priority' is not documented in priority-change.md"
    ]


def test_swapped_order(pair: tuple[Path, Path]) -> None:
    rb, pb = pair
    edit(rb, "{#set-priority}", "{#tmp-id}")
    edit(rb, "{#check-priority}", "{#set-priority}")
    edit(rb, "{#tmp-id}", "{#check-priority}")
    found = problems(pb)
    line = line_of(pb, "- id: set-priority")
    assert len(found) == 1, found
    assert found[0].startswith(f"{pb}:{line}: order differs from priority-change.md: step 2 is ")
    assert "'set-priority' here but 'check-priority' in the runbook" in found[0]


def test_unknown_action(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    edit(pb, "action: node.set_config", "action: node.set_conf")
    line = line_of(pb, "action: node.set_conf")
    assert problems(pb) == [
        f"{pb}:{line}: step 'set-priority': unknown action 'node.set_conf' "
        "(did you mean 'node.set_config'?)"
    ]


def test_unknown_check_and_undo(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    edit(pb, "- cluster.healthy", "- cluster.healty")
    edit(pb, "undo: {action: node.restore_config", "undo: {action: node.restore_cfg")
    found = problems(pb)
    assert any(
        "unknown check 'cluster.healty' (did you mean 'cluster.healthy'?)" in p for p in found
    )
    assert any("unknown undo action 'node.restore_cfg'" in p for p in found)


def test_bad_arguments(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    edit(
        pb,
        "args: {node: $node, parameter: replica-priority, value: $priority}\n",
        "args: {nod: $node, parameter: 7, value: $priority}\n",
    )
    line = line_of(pb, "args: {nod: $node")
    found = problems(pb)
    assert (
        f"{pb}:{line}: step 'set-priority': node.set_config: argument 'parameter' must be str, "
        "got 7" in found
    )
    assert any(p.startswith(f"{pb}:{line}:") and "unknown argument 'nod'" in p for p in found)
    assert any("missing required argument 'node'" in p for p in found)


def test_malformed_yaml(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    edit(pb, "    confirm: false\n", "    confirm: [false\n")
    found = problems(pb)
    assert len(found) == 1
    assert found[0].startswith(f"{pb}:") and "invalid YAML" in found[0]


def test_schema_errors(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    edit(pb, "    confirm: false\n", "    confirm: maybe\n    retries: 3\n")
    found = problems(pb)
    assert any("confirm must be true or false, got 'maybe'" in p for p in found)
    assert any("unknown field 'retries'" in p for p in found)


def test_cli_exit_1_with_messages(pair: tuple[Path, Path]) -> None:
    _, pb = pair
    edit(pb, "action: node.set_config", "action: node.nope")
    r = run_invoke("runbooks.check", "--root", str(pb.parent.parent))
    assert r.returncode == 1
    assert "unknown action 'node.nope'" in r.stdout
    assert "1 problem(s)" in r.stderr


def test_runbook_parser_reads_steps_not_fences_or_prose() -> None:
    rb, probs = runbookmod.parse(DATA / "runbooks" / "priority-change.md")
    assert probs == []
    assert [s.id for s in rb.steps] == ["preflight", "set-priority", "check-priority", "restore"]
    assert rb.steps[1].title == "Set the replica priority"
    assert "a comment inside a fence" in rb.steps[1].text  # '#' in a fence is not a heading
    assert "Sentinel promotes" not in rb.steps[2].text  # a prose ## heading ends the step
    assert rb.meta["duration"] == "10 s"


def test_runbook_parser_problems(tmp_path: Path) -> None:
    p = tmp_path / "x.md"
    p.write_text("# No front matter\n\n## 1. A {#Bad_Id}\ntext\n## 2. B {#b}\n\n## 3. C {#b}\nx\n")
    _, probs = runbookmod.parse(p)
    msgs = [str(x) for x in probs]
    assert any(":1: no front matter" in m for m in msgs)
    assert any(":3: step id 'Bad_Id' must be lowercase" in m for m in msgs)
    assert any(":5: step 'b' has no text" in m for m in msgs)
    assert any(":7: duplicate step id 'b' (also line 5)" in m for m in msgs)


def test_runbooks_list_and_show() -> None:
    r = run_invoke("runbooks.list")
    assert r.returncode == 0, r.stderr
    assert "health-check" in r.stdout
    r = run_invoke("runbooks.show", "health-check")
    assert r.returncode == 0, r.stderr
    assert "Every replica is in sync" in r.stdout
    assert "verifies: cluster.all_replicas_in_sync" in r.stdout
    r = run_invoke("runbooks.show", "no-such-thing")
    assert r.returncode == 1
    assert "no playbook 'no-such-thing'" in r.stderr
    assert "Traceback" not in r.stderr


def test_file_not_in_utf8_is_a_problem_not_a_traceback(pair: tuple[Path, Path]) -> None:
    rb, pb = pair  # an editor that saved the files in Latin-1
    rb.write_bytes(
        rb.read_bytes().replace(b"Set the replica priority", b"R\xe9gler la priorit\xe9")
    )
    pb.write_bytes(pb.read_bytes() + b"# r\xe9glage\n")
    r = run_invoke("runbooks.check", "--root", str(pb.parent.parent))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    last = len(pb.read_bytes().splitlines())
    assert f"{pb}:{last}: cannot read playbook: not UTF-8 (byte 0xe9)" in r.stdout
    _, probs = runbookmod.parse(rb)
    line = next(i for i, ln in enumerate(rb.read_bytes().splitlines(), 1) if b"\xe9" in ln)
    assert [str(p) for p in probs] == [f"{rb}:{line}: cannot read runbook: not UTF-8 (byte 0xe9)"]


def test_empty_front_matter_lacks_every_required_field(tmp_path: Path) -> None:
    p = tmp_path / "x.md"
    p.write_text("---\n---\n# X\n\n## 1. A {#a}\ntext\n")
    _, probs = runbookmod.parse(p)
    msgs = [str(x) for x in probs]
    for key in ("title", "when", "duration"):
        assert any(f"front matter lacks {key!r}" in m for m in msgs), msgs


def test_broken_front_matter_is_one_problem(tmp_path: Path) -> None:
    p = tmp_path / "x.md"
    for head in ("---\ntitle: [x\n---\n", "---\n- a list\n---\n", "# no front matter\n"):
        p.write_text(head + "# X\n\n## 1. A {#a}\ntext\n")
        _, probs = runbookmod.parse(p)
        assert len(probs) == 1, (head, [str(x) for x in probs])


def test_cli_root_without_playbooks_is_an_error(tmp_path: Path) -> None:
    r = run_invoke("runbooks.check", "--root", str(tmp_path / "typo"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no playbooks" in r.stderr and "Traceback" not in r.stderr
