"""Fault injection on lab processes: what the drills and benchmarks break on purpose.

Each kind is one plain function `(lab, endpoint) -> FaultResult`, registered in `KINDS`. To add a
kind, write the function and add one entry (`KINDS["diverge"] = diverge`). Every function acts
through `Lab`, which refuses inventories that are not `lab: true`.
"""

from __future__ import annotations

import secrets
import shutil
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis_ha import facts as factsmod
from redis_ha.cli.names import command
from redis_ha.conn import client
from redis_ha.errors import InventoryError, LabError
from redis_ha.inventory import Endpoint, Inventory
from redis_ha.lab.cluster import Lab, pid_frozen


@dataclass
class FaultResult:
    """What was done to which process, for the operator and for scripts."""

    kind: str
    node: str
    address: str
    pid: int | None
    role: str  # what the process was before the fault: master | replica | sentinel | unknown
    did: str  # one sentence
    new_pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        where = f"{self.node} ({self.address}, pid {self.pid}, was {self.role})"
        return f"{self.kind}: {where}: {self.did}"


Fault = Callable[[Lab, Endpoint], FaultResult]


def endpoint(inv: Inventory, name: str) -> Endpoint:
    """A Redis node or Sentinel by name, or a clear error listing the known names."""
    ep = inv.find(name)
    if ep is not None:
        return ep
    known = ", ".join(e.name for e in (*inv.nodes, *inv.sentinels))
    raise InventoryError(f"unknown node {name!r} (this inventory has: {known})")


def is_sentinel(lab: Lab, ep: Endpoint) -> bool:
    return ep in lab.inv.sentinels


def role_of(lab: Lab, ep: Endpoint) -> str:
    """The role the process has right now, asked with a short timeout (a frozen one: unknown)."""
    if is_sentinel(lab, ep):
        return "sentinel"
    pid = lab.pid(ep.name)
    if pid is not None and pid_frozen(pid):
        return "unknown (frozen)"
    f = factsmod.node_facts(lab.inv, ep, timeout=0.3)
    return f.role or "unknown"


def _running_pid(lab: Lab, ep: Endpoint) -> int:
    pid = lab.pid(ep.name)
    if pid is None:
        raise LabError(f"{ep.name} is not running (start it with: {command('lab.up')})")
    return pid


def crash(lab: Lab, ep: Endpoint) -> FaultResult:
    """SIGKILL: the process dies at once, like a kernel OOM kill or a host crash."""
    pid = _running_pid(lab, ep)
    role = role_of(lab, ep)
    lab.stop(ep.name, kill=True)
    return FaultResult("crash", ep.name, ep.address, pid, role, "killed with SIGKILL")


def freeze(lab: Lab, ep: Endpoint) -> FaultResult:
    """SIGSTOP: the process hangs with its sockets open, like a stuck VM or a long GC pause."""
    pid = _running_pid(lab, ep)
    if pid_frozen(pid):
        return FaultResult("freeze", ep.name, ep.address, pid, "unknown (frozen)", "already frozen")
    role = role_of(lab, ep)
    lab.signal(ep.name, signal.SIGSTOP)
    return FaultResult(
        "freeze", ep.name, ep.address, pid, role, "frozen with SIGSTOP (undo: --kind resume)"
    )


def resume(lab: Lab, ep: Endpoint) -> FaultResult:
    """SIGCONT: a frozen process runs again, unaware that time has passed."""
    pid = _running_pid(lab, ep)
    if not pid_frozen(pid):
        return FaultResult(
            "resume", ep.name, ep.address, pid, role_of(lab, ep), "was not frozen: nothing to do"
        )
    lab.signal(ep.name, signal.SIGCONT)
    return FaultResult(
        "resume", ep.name, ep.address, pid, "unknown (frozen)", "resumed with SIGCONT"
    )


# Files a redis-server may load at start. Even with `save ""` and `appendonly no`, a replica
# writes dump.rdb to disk at every full sync (repl-diskless-load is disabled by default) and loads
# it when it starts again: a "non-persistent" node on a VM comes back with stale data, not empty.
DATA_FILES = ("dump.rdb", "appendonly.aof", "appendonlydir")


def wipe_data(lab: Lab, ep: Endpoint) -> list[str]:
    """Remove what a stopped node could load at start (its folder is its `dir`)."""
    removed = []
    for name in DATA_FILES:
        p = lab.proc_dir(ep.name) / name
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


def restart_empty(
    lab: Lab, ep: Endpoint, *, safe: bool | None = None, after_s: float = 0.0
) -> FaultResult:
    """Kill, then start again at once from the node's own config file with no data.

    This is what a platform restart policy does to a container without a volume: the process
    comes back within a second, possibly still believing it is the primary, and empty. Data files
    left on disk (see DATA_FILES) are removed first, as a fresh container would not have them.
    `safe` starts it through redis_ha.safestart (None: as the inventory says); `after_s`: the
    supervisor's restart delay (returns at once, the node still down).
    """
    pid = _running_pid(lab, ep)
    role = role_of(lab, ep)
    lab.stop(ep.name, kill=True)
    if is_sentinel(lab, ep):
        new = lab.start_sentinel(ep, primary=lab.inv.nodes[0])  # existing config: `primary` unused
    else:
        wipe_data(lab, ep)
        new = lab.start_node(ep, safe=safe, after_s=after_s)
    when = f"in {after_s:g} s" if after_s else "again"
    return FaultResult(
        "restart-empty",
        ep.name,
        ep.address,
        pid,
        role,
        f"killed; started {when} from its own config file with no data (pid {new})",
        new_pid=new,
    )


def diverge(lab: Lab, ep: Endpoint) -> FaultResult:
    """A replica cut off from its primary for good, still serving its old data to readers.

    Imitates a half-applied password rotation: the replica's `masterauth` no longer matches the
    primary's password, its link drops and every reconnection fails authentication. Sentinel
    cannot repair it (it fixes replication targets, not credentials), the replica keeps serving
    stale sessions (replica-serve-stale-data), and it falls further behind with every write:
    only a rebuild (a restart from the rendered config) brings it back.
    """
    pid = _running_pid(lab, ep)
    role = role_of(lab, ep)
    if role != "replica":
        raise LabError(f"diverge needs a replica; {ep.name} is {role}")
    c = client(lab.inv, ep, timeout=2.0)
    try:
        c.config_set("masterauth", "wrong-" + secrets.token_hex(8))
        c.execute_command("CLIENT", "KILL", "TYPE", "master")
    finally:
        c.close()
    return FaultResult(
        "diverge",
        ep.name,
        ep.address,
        pid,
        role,
        "masterauth changed to a wrong password and the link dropped: it stays detached and "
        f"serves stale data (fix: {command(f'replica.rebuild --node {ep.name}')})",
    )


def _node_only(lab: Lab, ep: Endpoint, kind: str) -> None:
    if is_sentinel(lab, ep):
        raise LabError(f"{kind} needs a Redis node; {ep.name} is a Sentinel")


def oom(lab: Lab, ep: Endpoint) -> FaultResult:
    """maxmemory lowered to what the node holds (noeviction): every write is refused with OOM.

    The lab's datasets are far below the inventory's maxmemory; lowering the limit to the memory
    in use is the quickest way to the state a growing dataset reaches on its own.
    """
    _node_only(lab, ep, "oom")
    pid = _running_pid(lab, ep)
    role = role_of(lab, ep)
    c = client(lab.inv, ep, timeout=2.0)
    try:
        used = int(c.info("memory")["used_memory"])
        c.config_set("maxmemory-policy", "noeviction")
        c.config_set("maxmemory", str(max(1, used // 2)))
    finally:
        c.close()
    return FaultResult(
        "oom", ep.name, ep.address, pid, role,
        f"maxmemory set to {max(1, used // 2)} bytes (it holds {used}), policy noeviction: "
        "writes are refused with OOM",
    )  # fmt: skip


# A setting that matters and that nothing puts back by itself (what `config.drift` reports).
DRIFT_SETTING = ("min-replicas-to-write", "0")


def drift(lab: Lab, ep: Endpoint) -> FaultResult:
    """A live setting changed away from the inventory, as a hurried hand-made CONFIG SET does.

    min-replicas-to-write 0 on a node: the cluster looks healthy, but the primary would now
    acknowledge writes with no replica to copy them to (the split-brain guard is off).
    """
    _node_only(lab, ep, "drift")
    pid = _running_pid(lab, ep)
    role = role_of(lab, ep)
    key, value = DRIFT_SETTING
    c = client(lab.inv, ep, timeout=2.0)
    try:
        c.config_set(key, value)
    finally:
        c.close()
    return FaultResult("drift", ep.name, ep.address, pid, role, f"CONFIG SET {key} {value}")


KINDS: dict[str, Fault] = {
    "crash": crash,
    "freeze": freeze,
    "resume": resume,
    "restart-empty": restart_empty,
    "diverge": diverge,
    "oom": oom,
    "drift": drift,
}


def prepare(inv: Inventory, kind: str, node: str) -> tuple[Lab, Fault, Endpoint]:
    """Validate everything (lab inventory, kind, node) before anything is done."""
    lab = Lab(inv)  # refuses non-lab inventories
    fn = KINDS.get(kind)
    if fn is None:
        raise LabError(f"unknown fault kind {kind!r} (choose: {', '.join(KINDS)})")
    return lab, fn, endpoint(inv, node)


def inject(inv: Inventory, kind: str, node: str) -> FaultResult:
    """Validate everything, then inflict one fault on one lab process."""
    lab, fn, ep = prepare(inv, kind, node)
    return fn(lab, ep)
