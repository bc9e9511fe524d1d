"""`lab.*`: the local 3+3 cluster of real processes, its app traffic, faults and partitions."""

from __future__ import annotations

import json as jsonlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Collection, task

from redis_ha import ui
from redis_ha.choices import FAULT_KINDS
from redis_ha.cli.common import (
    INVENTORY_HELP,
    SERVER_HELP,
    expected_errors,
    load_inventory,
    stop_on_signals,
)
from redis_ha.cli.names import command
from redis_ha.errors import HAError, LabError

if TYPE_CHECKING:  # imported where used: listing the tasks should not load the lab and redis-py
    from redis_ha.lab.traffic import Report

DOCKER_DIR = ".lab-docker"


BACKEND_HELP = "lab (local processes, the default) or docker (containers on a network of their own)"
DIR_HELP = f"the Docker lab's state folder (default {DOCKER_DIR})"


@task(
    help={
        "inventory": INVENTORY_HELP,
        "timeout": "seconds to wait for a healthy cluster",
        "server": SERVER_HELP,
        "backend": BACKEND_HELP,
        "dir": DIR_HELP,
        "acl": "start a new lab with the least-privilege ACL users of inventories/acl/",
        "tls": "TLS only, with a throwaway CA (the inventory's `tls:` files, e.g. "
        "inventories/lab-tls.yaml)",
    }
)
@expected_errors
def up(c, inventory=None, timeout=30, server=None, backend="lab", dir=None, acl=False, tls=False):
    """Start the lab cluster (idempotent) and wait until it is healthy, then show its status."""
    from redis_ha import view as viewmod
    from redis_ha.lab.cluster import Lab

    if _docker(backend):
        from redis_ha.dockerlab.lab import DockerLab

        dlab = DockerLab(dir or DOCKER_DIR)
        st = dlab.up(timeout=max(float(timeout), 60.0))
        ui.console.print(
            f"Docker lab {st.id} up on network {st.network} ({st.subnet}); state in {dlab.dir}\n"
            f"operate it from inside: docker exec -it {st.containers['ops']} redis-ha status"
        )
        return
    inv = load_inventory(inventory)
    if tls and inv.tls is None:
        raise LabError(
            f"--tls: {inv.path} has no `tls:` section naming the CA, certificate and key files "
            "(use inventories/lab-tls.yaml, or add one)"
        )
    lab = Lab(inv, server=server)
    res = lab.up(timeout=float(timeout), acl=bool(acl))
    if res.started:
        bins = lab.binaries()
        ui.console.print(f"started {', '.join(res.started)} on {bins.label} (state in {lab.dir})")
    else:
        ui.console.print("lab already running and healthy: nothing changed")
    v = viewmod.take(inv)
    ui.status_tables(v.facts, v.health)


def _docker(backend: str) -> bool:
    if backend not in ("lab", "docker"):
        raise HAError(f"--backend must be lab or docker, not {backend!r}", code=2)
    return backend == "docker"


@task(help={"inventory": INVENTORY_HELP, "backend": BACKEND_HELP, "dir": DIR_HELP})
@expected_errors
def down(c, inventory=None, backend="lab", dir=None):
    """Stop every lab process by PID and remove the lab's state (.lab/)."""
    from redis_ha.lab.cluster import Lab

    if _docker(backend):
        from redis_ha.dockerlab.lab import DockerLab

        gone = DockerLab(dir or DOCKER_DIR).down()
        ui.console.print(f"removed {', '.join(gone)}" if gone else "no Docker lab was recorded")
        return
    inv = load_inventory(inventory)
    stopped = Lab(inv).down()
    ui.console.print(f"stopped {', '.join(stopped)}" if stopped else "no lab process was running")


def _progress(snap: dict[str, Any]) -> None:
    print(
        f"t={snap['t']:>6.1f}s  ops={snap['ops']:>7}  ops/s={snap['ops_per_s']:>7.1f}  "
        f"failed={snap['failed']:>5}  primary={snap['primary']}",
        file=sys.stderr,
        flush=True,
    )


def _summary(r: Report) -> None:
    c = ui.console
    c.print(
        f"[bold]traffic[/] {r.client} client, {r.config}: {r.ops} requests in "
        f"{r.duration_s:.1f} s = [bold]{r.ops_per_s:.0f} ops/s[/] (target {r.rate_target:.0f})"
    )
    failed = f"[red]{r.failed}[/]" if r.failed else "[green]0[/]"
    c.print(f"failed requests: {failed}" + (f"  {r.errors}" if r.errors else ""))
    lat = r.latency_ms
    c.print(
        f"latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
        f"longest write stall {r.write_stall_s * 1000:.0f} ms"
        + (f" (at {r.write_stall_at_s:.1f} s)" if r.write_stall_at_s is not None else "")
    )
    for fo in r.failovers:
        c.print(f"failover seen at {fo['at_s']:.2f} s: {fo['from']} -> {fo['to']}")
    for ch in r.config_changes:
        c.print(f"app config changed at {ch['at_s']:.2f} s: {ch.get('config') or ch.get('error')}")
    h = r.hit_rate
    c.print(
        f"cache hit rate {h['overall']}"
        + (
            f" (before failover {h['before_failover']}, after {h['after_failover']})"
            if r.failovers
            else ""
        )
    )
    if r.check["ok"]:
        lost = r.missing_writes
        style = "red" if lost else "green"
        c.print(
            f"acknowledged writes missing on {r.check['primary']}: [{style}]{lost}[/] "
            f"of {r.checked_writes} ({r.missing_keys} keys); stale reads during the run: "
            f"{r.stale_reads}"
        )
    else:
        c.print(f"[yellow]acknowledged writes not checked[/]: {r.check['error']}")


def _number(option: str, value: str | None, default: float, *, whole: bool = False) -> float:
    """Parse a numeric option here, so a typo is one line, not invoke's traceback."""
    if value is None:
        return default
    try:
        return float(int(value)) if whole else float(value)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise HAError(f"--{option} must be {kind}, got {value!r}") from None


@task(
    help={
        "inventory": INVENTORY_HELP,
        "rate": "requests per second, all workers together (default 1000)",
        "duration": "seconds to run; 0 = until Ctrl-C or SIGTERM (default 0)",
        "client": "naive (redis-py defaults) or recommended (redis_ha.client; default)",
        "workers": "worker threads (default 4)",
        "keys": "number of session keys session:<n> (default 10000)",
        "write_ratio": "share of requests that are writes, 0..1 (default 0.5)",
        "env_file": "read REDIS_SENTINELS/REDIS_SENTINEL_MASTER/REDIS_URL/REDIS_PASSWORD_FILE "
        "from this dotenv file and follow its changes (e.g. .lab/app.env)",
        "settle": "seconds to wait for the cluster to settle before checking writes (default 30)",
        "json": "print one JSON report on stdout (progress lines go to stderr)",
        "out": "also write the JSON report to this file",
        "quiet": "no progress lines",
        "ready_file": "create this file once the sessions are loaded and the clock runs",
    }
)
@expected_errors
def traffic(
    c,
    inventory=None,
    rate=None,
    duration=None,
    client="recommended",
    workers=None,
    keys=None,
    write_ratio=None,
    env_file=None,
    settle=None,
    json=False,
    out=None,
    quiet=False,
    ready_file=None,
):
    """Simulate the web app's session traffic and report errors, stalls, latency and lost writes."""
    from redis_ha.lab.traffic import CLIENTS, Traffic

    inv = load_inventory(inventory)
    if client not in CLIENTS:
        raise HAError(f"--client must be one of {', '.join(CLIENTS)}, not {client!r}")
    t = Traffic(
        inv,
        rate=_number("rate", rate, 1000.0),
        client=client,
        workers=int(_number("workers", workers, 4, whole=True)),
        keys=int(_number("keys", keys, 10000, whole=True)),
        write_ratio=_number("write-ratio", write_ratio, 0.5),
        env_file=env_file,
        settle_s=_number("settle", settle, 30.0),
        progress=None if quiet else _progress,
    )
    dur = _number("duration", duration, 0.0)
    with stop_on_signals(t.stop_event):
        t.start()
        if ready_file:
            Path(ready_file).touch()
        try:
            t.wait(dur if dur > 0 else None)
        finally:
            if not quiet:
                print("stopping; checking acknowledged writes ...", file=sys.stderr, flush=True)
            report = t.stop()
    d = report.to_dict()
    if out:
        try:
            Path(out).write_text(jsonlib.dumps(d, indent=2) + "\n")
        except OSError as e:
            raise HAError(f"cannot write the report to {out}: {e.strerror}") from None
    if json:
        ui.print_json(d)
    else:
        _summary(report)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "kind": f"what to do: {', '.join(FAULT_KINDS)}",
        "node": "node or Sentinel name, e.g. redis-1 (names, not roles: see "
        f"`{command('status')}`)",
        "dry_run": "say what would be done and do nothing",
        "json": "print the result as JSON",
    }
)
@expected_errors
def fault(c, kind, node, inventory=None, dry_run=False, json=False):
    """Inject a fault into one lab process: crash, freeze, resume, restart-empty, diverge, oom..."""
    from redis_ha.lab import faults

    inv = load_inventory(inventory)
    if dry_run:
        lab, _, ep = faults.prepare(inv, kind, node)
        pid = lab.pid(ep.name)
        ui.console.print(
            f"dry run: would {kind} {ep.name} ({ep.address}, pid {pid}, "
            f"now {faults.role_of(lab, ep) if pid else 'not running'}); nothing done"
        )
        return
    res = faults.inject(inv, kind, node)
    if json:
        ui.print_json(res.to_dict())
    else:
        ui.console.print(res.line())


@task(help={"inventory": INVENTORY_HELP, "isolate": "node to cut off from the cluster"})
@expected_errors
def partition(c, isolate, inventory=None):
    """Cut a lab node off from the other nodes and Sentinels (clients still reach it directly)."""
    from redis_ha.lab import partition as partitionmod
    from redis_ha.lab.cluster import Lab

    lab = Lab(load_inventory(inventory))
    now = partitionmod.isolate(lab, isolate)
    ui.console.print(f"isolated: {', '.join(now)} (its own port still answers; `lab.heal` undoes)")


@task(help={"inventory": INVENTORY_HELP})
@expected_errors
def heal(c, inventory=None):
    """Restore every link cut by lab.partition."""
    from redis_ha.lab import partition as partitionmod
    from redis_ha.lab.cluster import Lab

    lab = Lab(load_inventory(inventory))
    partitionmod.require_partitionable(lab)
    was = partitionmod.heal(lab)
    ui.console.print(f"healed: {', '.join(was)}" if was else "no partition was active")


lab = Collection("lab", up, down, traffic, fault, partition, heal)
