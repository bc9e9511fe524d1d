"""Known secrets appear in no artefact (issue 15, item 7): every read-only task, every procedure
(dry run, and a real switchover, health check and rollback round trip), the renderers, the
journal exports and the app simulator run with the lab password, an ACL user's password and a
Railway token in the environment; then stdout, stderr, journals, reports, logs and every written
file is grepped. Only the files that must hold the password are left out: the rendered
redis/sentinel configs, the password file and the app's env file (its REDIS_PASSWORD).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis_ha import journal as journalmod
from redis_ha.lab.cluster import Lab

from .conftest import run_invoke

pytestmark = pytest.mark.lab

RAILWAY_TOKEN = "rw-token-7f3a9c1e-known-secret"
MUST_HOLD = {"password", "app.env"}  # besides *.conf


def test_no_secret_in_any_artefact(lab: Lab, tmp_path: Path) -> None:
    pw = lab.inv.password()
    assert pw
    # The same cluster through the ACL user field (its password is the lab's: same secret).
    d = yaml.safe_load(Path(lab.inv.path).read_text())
    d["auth"] = {"password_env": "SECRET_TEST_PW", "username": "default"}
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(d))
    home = tmp_path / "home"
    env = {
        journalmod.ENV_DIR: str(tmp_path / "journal"),
        "REDIS_HA_HOME": str(home),
        "SECRET_TEST_PW": pw,
        "RAILWAY_TOKEN": RAILWAY_TOKEN,
        "RAILWAY_API_TOKEN": RAILWAY_TOKEN,
    }
    node = lab.inv.nodes[-1].name
    runs = [
        ["status"],
        ["status", "--json"],
        ["health", "--json"],
        ["incident", "--json"],
        ["splitbrain.detect"],
        ["config.drift"],
        ["replica.diagnose", node],
        ["check", "--yes"],
        ["failover.manual", "--dry-run"],
        ["replica.rebuild", node, "--dry-run"],
        ["splitbrain.recover", "--dry-run"],
        ["rollback", "--dry-run"],
        ["rollback.undo", "--dry-run"],
        ["failover.manual", "--yes"],
        ["failover.verify"],
        ["config.render", "--out", str(tmp_path / "rendered")],
        ["config.render-units", "--out", str(tmp_path / "units")],
        ["journal.list"],
        ["journal.show"],
        ["lab.traffic", "--duration", "2", "--rate", "200"],
    ]
    outputs: list[tuple[str, str]] = []
    codes: dict[str, int] = {}
    for argv in runs:
        r = run_invoke(*argv, inventory=inv, env=env, timeout=120)
        codes[" ".join(argv)] = r.returncode
        outputs.append((" ".join(argv) + " (stdout)", r.stdout))
        outputs.append((" ".join(argv) + " (stderr)", r.stderr))
        assert "Traceback" not in r.stdout + r.stderr, (argv, r.stdout, r.stderr)
    assert codes["failover.manual --yes"] == 0 and codes["check --yes"] == 0, codes
    assert codes["status --json"] == 0 and codes["rollback --dry-run"] == 0, codes
    # A wrong password is not echoed either.
    r = run_invoke("status", inventory=inv, env={**env, "SECRET_TEST_PW": "wrong-" + pw})
    outputs.append(("status with a wrong password", r.stdout + r.stderr))
    assert "authentication failed" in r.stdout

    files = [
        p
        for root in (tmp_path, lab.dir, home)
        for p in Path(root).rglob("*")
        if p.is_file() and p.suffix != ".conf" and p.name not in MUST_HOLD
    ]
    assert any(p.suffix == ".jsonl" for p in files), "no journal was written"
    assert any(p.name.endswith(".log") for p in files), "no log was read"
    assert any((tmp_path / "units").rglob("*")), "render-units wrote nothing"
    hits = [name for name, text in outputs if pw in text or RAILWAY_TOKEN in text]
    for p in files:
        data = p.read_bytes()
        if pw.encode() in data or RAILWAY_TOKEN.encode() in data:
            hits.append(str(p))
    assert hits == [], f"secrets found in: {hits}"
    # The configs that must hold the password do (so the grep above could have found it).
    assert pw in (tmp_path / "rendered" / f"{node}.conf").read_text()
