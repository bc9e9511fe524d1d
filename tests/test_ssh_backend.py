"""The ssh backend and the ssh tunnels against a real OpenSSH server on 127.0.0.1.

One sshd and one lab per module; the inventories differ only in their `control:` mapping.
The refusals run first (each must leave the lab exactly as it was), then `replica.rebuild` and
`failover.manual` end to end through the backend, then `status` through a tunnel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_ha import facts as factsmod
from redis_ha import inventory
from redis_ha.conn import client
from redis_ha.control import ssh
from redis_ha.errors import InventoryError
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports, lab_inventory_dict

from .conftest import run_invoke
from .sshd_rig import Sshd, keygen, lab_commands, sentinel_log_command, sshd

pytestmark = pytest.mark.lab


class Site:
    """The sshd, the lab it controls, and a way to write inventories with other controls."""

    def __init__(self, server: Sshd, base: dict[str, Any], dir: Path) -> None:
        self.server, self.base, self.dir = server, base, dir

    def inventory(self, name: str, **ssh_options: Any) -> Path:
        """An inventory of the lab whose nodes use the ssh backend with these options."""
        d = yaml.safe_load(yaml.safe_dump(self.base))
        d["control"]["ssh"] = self.server.ssh_options(**ssh_options)
        path = self.dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(d))
        return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("ssh-site")
    with sshd(tmp) as server:
        d = lab_inventory_dict(tmp, min_replicas_to_write=1)
        path = tmp / "inventory.yaml"
        d["control"] = {
            "backend": "ssh",
            "ssh": server.ssh_options(),
            "commands": lab_commands(Path(d["lab_dir"]), path),
        }
        for s in d["sentinels"]:
            s["control"] = {"commands": sentinel_log_command(Path(d["lab_dir"]))}
        path.write_text(yaml.safe_dump(d))
        lab = Lab(inventory.load(path))
        lab.up(timeout=60)
        try:
            yield Site(server, d, tmp)
        finally:
            lab.down()


def _snapshot(inv: inventory.Inventory) -> dict[str, tuple[str, str, str]]:
    """run_id, role and replica-priority of every node: what "nothing changed" means."""
    out = {}
    for n in inv.nodes:
        c = client(inv, n, timeout=2)
        try:
            info = c.info("server")
            out[n.name] = (
                info["run_id"],
                c.execute_command("ROLE")[0],
                c.config_get("replica-priority")["replica-priority"],
            )
        finally:
            c.close()
    return out


def _replica(inv: inventory.Inventory) -> str:
    return next(f.name for f in factsmod.gather(inv).nodes if f.role == "replica")


def _one_clear_line(r: Any, pattern: str) -> None:
    assert r.returncode != 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    hits = [ln for ln in out.splitlines() if re.search(pattern, ln)]
    assert hits, out[-2000:]


@pytest.mark.parametrize(
    "case, options, pattern",
    [
        ("wrong-key", {"key_file": "WRONG"}, r"ssh root@127\.0\.0\.1:\d+: authentication failed"),
        ("unknown-host-key", {"known_hosts": "EMPTY"}, r"host key unknown \(not in .*EMPTY"),
        ("unreachable", {"port": "FREE"}, r"ssh root@127\.0\.0\.1:\d+: connection refused"),
    ],
)
def test_connection_failures_are_one_line_and_change_nothing(
    site: Site, case: str, options: dict[str, Any], pattern: str
) -> None:
    if options.get("key_file") == "WRONG":
        other = site.dir / "other_key"
        if not other.exists():
            keygen(other)
        options = {"key_file": str(other)}
    if options.get("known_hosts") == "EMPTY":
        (site.dir / "EMPTY").write_text("")
        options = {"known_hosts": str(site.dir / "EMPTY")}
    if options.get("port") == "FREE":
        options = {"port": free_ports(1)[0]}
    path = site.inventory(case, **options)
    inv = inventory.load(path)
    before = _snapshot(inv)
    node = _replica(inv)
    r = run_invoke("replica.rebuild", "--node", node, "--yes", inventory=path, timeout=60)
    _one_clear_line(r, pattern)
    assert _snapshot(inv) == before
    if case == "unknown-host-key":
        assert (site.dir / "EMPTY").read_text() == ""  # never accepted silently


def test_a_new_host_key_is_accepted_only_when_the_inventory_says_so(site: Site) -> None:
    known = site.dir / "accept-new"
    path = site.inventory("accept-new", known_hosts=str(known), accept_new_host_key=True)
    inv = inventory.load(path)
    ctl = ssh.SshControl(inv)
    assert ctl.is_running(inv.nodes[0])
    saved = known.read_text()
    assert f"[127.0.0.1]:{site.server.port} ssh-ed25519 " in saved
    # A changed key is refused even then.
    other = site.dir / "other_host_key"
    keygen(other)
    wrong = (other.with_suffix(".pub")).read_text().split()
    known.write_text(f"[127.0.0.1]:{site.server.port} {wrong[0]} {wrong[1]}\n")
    ssh.forget(ssh.target(inv, inv.nodes[0]))
    with pytest.raises(ssh.ControlError, match="host key does not match"):
        ctl.is_running(inv.nodes[0])


def test_replica_rebuild_and_failover_manual_through_ssh(site: Site, tmp_path: Path) -> None:
    path = site.inventory("e2e")
    inv = inventory.load(path)
    node = _replica(inv)
    before = _snapshot(inv)
    env = {"REDIS_HA_JOURNAL_DIR": str(tmp_path / "journal")}
    r = run_invoke("replica.rebuild", "--node", node, "--force", "--yes", inventory=path, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "(ssh backend)" in r.stdout, r.stdout[-3000:]
    after = _snapshot(inv)
    assert after[node][0] != before[node][0]  # a new process, started over ssh
    assert after[node][1:] == ("slave", "100")  # a replica again, promotable again
    pid = int(Path(site.base["lab_dir"], node, "pid").read_text())
    assert client(inv, inv.node(node)).info("server")["process_id"] == pid  # the daemon's

    primary = next(n for n, v in after.items() if v[1] == "master")
    r = run_invoke("failover.manual", "--yes", inventory=path, env=env, timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    roles = _snapshot(inv)
    assert roles[primary][1] == "slave"
    # failover.verify's timeline reads the Sentinel logs through their backend (tail over ssh)
    v = run_invoke("failover.verify", inventory=path, env=env, timeout=60)
    assert v.returncode == 0, v.stdout[-3000:] + v.stderr
    assert f"manual (SENTINEL FAILOVER) failover: {primary} -> " in v.stdout, v.stdout[-3000:]
    assert "no log for" not in v.stdout and "no readable log" not in v.stdout


def test_status_through_a_tunnel_over_a_jump_host(site: Site) -> None:
    jump = f"root@127.0.0.1:{site.server.port}"
    path = site.inventory("tunnel", jump=jump)
    d = yaml.safe_load(path.read_text())
    d["control"]["tunnel"] = True
    path.write_text(yaml.safe_dump(d))
    mark = site.server.log.stat().st_size
    r = run_invoke("status", "--json", inventory=path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    st = json.loads(r.stdout)
    assert st["healthy"] is True, r.stdout[-2000:]
    log = site.server.log.read_text()[mark:]
    targets = set(re.findall(r"direct_tcpip: originator .* target 127\.0\.0\.1 port (\d+)", log))
    wanted = {str(e["port"]) for e in site.base["nodes"] + site.base["sentinels"]}
    assert wanted <= targets, (wanted, targets, log[-1500:])


def test_status_through_a_tunnel_whose_bastion_is_down_is_one_line(site: Site) -> None:
    path = site.inventory("tunnel-down", jump=f"root@127.0.0.1:{free_ports(1)[0]}")
    d = yaml.safe_load(path.read_text())
    d["control"]["tunnel"] = True
    path.write_text(yaml.safe_dump(d))
    r = run_invoke("status", inventory=path)
    _one_clear_line(r, r"tunnel: ssh root@127\.0\.0\.1:\d+: connection refused")


@pytest.mark.parametrize(
    "control, problem",
    [
        ({"ssh": {"prot": 22}}, "control.ssh.prot: unknown field"),
        ({"ssh": {"port": "22"}}, "control.ssh.port: must be an integer"),
        ({"ssh": {"jump": "bastion:x"}}, "control.ssh.jump: 'bastion:x' is not [user@]host[:port]"),
        ({"commands": {"stop": "kill {pid}"}}, "control.commands.stop: unknown placeholder {pid}"),
        ({"commands": {"restrat": "x"}}, "control.commands.restrat: unknown field"),
        ({"tunnel": "yes"}, "control.tunnel: must be true or false"),
    ],
)
def test_control_mapping_is_validated_in_readable_lines(
    tmp_path: Path, control: dict[str, Any], problem: str
) -> None:
    d = lab_inventory_dict(tmp_path)
    d["control"] = {"backend": "ssh", **control}
    with pytest.raises(InventoryError) as e:
        inventory.from_dict(d, tmp_path / "inventory.yaml")
    assert problem in str(e.value), str(e.value)
