"""Start redis-server only in a role that cannot wipe the cluster: ask the Sentinels first.

Without persistence a restarted node is empty. If it was the primary and comes back before the
Sentinels notice (down-after), it is still their primary, its replicas resynchronise from it and
every copy of the data is gone, with no failover at all. This wrapper runs before redis-server:

- Sentinels (a majority) name another node: start as that node's replica.
- Sentinels name this node and a peer still holds data: ask them to fail over (`SENTINEL
  FAILOVER`) while this node is still down, wait until a majority names the new primary, then
  start as its replica. If that does not happen in time, start as a replica of the peer with the
  most data anyway: an empty node never serves as primary (writes stay refused until a failover).
- Sentinels name this node and no peer holds data: nothing to lose, start as primary.
- No Sentinel majority: follow a reachable primary; else replicate the peer holding data; else
  (nothing reachable, nothing to lose) start as configured: a brand-new cluster cold-starts.
- `--bootstrap`: start as configured, no questions asked.

It logs its decision in one line on stderr, then exec()s redis-server, so the PID stays the one
the supervisor (systemd, Railway, the lab) started.

    python -m redis_ha.safestart --inventory inv.yaml --node redis-1 -- redis-server redis.conf
    REDIS_HA_SELF=10.0.0.1:6379 REDIS_HA_SENTINELS=10.0.0.4:26379,10.0.0.5:26379,10.0.0.6:26379 \
      REDIS_HA_PASSWORD_FILE=/run/secrets/redis python -m redis_ha.safestart -- redis-server r.conf
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis

from redis_ha import inventory as invmod
from redis_ha.client import parse_hostport
from redis_ha.conn import client, describe_error
from redis_ha.errors import HAError, InventoryError
from redis_ha.facts import NodeFacts, SentinelFacts, node_facts, sentinel_facts
from redis_ha.health import majority_primary
from redis_ha.inventory import Auth, Endpoint, Inventory, Settings

PREFIX = "safestart"
DEFAULT_HANDOVER_S = 30.0


@dataclass(frozen=True)
class Decision:
    """What to start as: `configured` (argv untouched), `primary`, `replica` or `handover`."""

    mode: str
    replicaof: str | None  # host:port for replica/handover (handover: fallback if no failover)
    reason: str


def same_addr(a: str | None, b: str | None) -> bool:
    """`host:port` equality where every loopback spelling is the same host."""
    if not a or not b:
        return False
    ha, _, pa = a.rpartition(":")
    hb, _, pb = b.rpartition(":")
    return pa == pb and invmod.same_host(ha, hb)


def _best(peers: Sequence[NodeFacts]) -> NodeFacts:
    """The copy to keep: the highest replication offset, then the most keys."""
    return max(peers, key=lambda p: (p.offset or 0, p.keys or 0))


def decide(
    me: str | Sequence[str],
    sentinels: Sequence[SentinelFacts],
    peers: Sequence[NodeFacts],
    *,
    n_sentinels: int,
    bootstrap: bool = False,
) -> Decision:
    """Pure decision from what the Sentinels and the other nodes say (this node is down).

    `me` is this node's address (or every address it is known by: own and announced).
    """
    mine = (me,) if isinstance(me, str) else tuple(me)
    if bootstrap:
        return Decision("configured", None, "bootstrap requested: starting as configured")
    named, count = majority_primary(sentinels, n_sentinels)
    holders = [p for p in peers if p.up and (p.keys or 0) > 0]
    if named:
        said = f"{count}/{n_sentinels} Sentinels name {named} as primary"
        if not any(same_addr(named, m) for m in mine):
            return Decision("replica", named, f"{said}: starting as its replica")
        if not holders:
            return Decision(
                "primary", None, f"{said} (this node) and no peer holds data: starting as primary"
            )
        best = _best(holders)
        keys = ", ".join(f"{p.name} {p.keys} keys" for p in holders)
        return Decision(
            "handover",
            best.address,
            f"{said} (this node), which restarts empty while peers hold data ({keys}): "
            "asking the Sentinels to fail over before starting",
        )
    answered = sum(1 for s in sentinels if s.up)
    why = f"no Sentinel majority ({count}/{n_sentinels} agree, {answered} answered)"
    masters = [p for p in peers if p.up and p.role == "master"]
    if masters:
        m = max(masters, key=lambda p: (p.keys or 0, p.offset or 0))
        return Decision("replica", m.address, f"{why}; {m.address} is primary: starting as replica")
    if holders:
        best = _best(holders)
        return Decision(
            "replica",
            best.address,
            f"{why}; no primary, {best.address} holds {best.keys} keys: starting as its replica "
            "so this empty node cannot wipe it (writes wait for a failover)",
        )
    return Decision(
        "configured", None, f"{why}; no peer holds data: cold start, starting as configured"
    )


# --- where the cluster is (inventory or environment) -------------------------------------------


def _endpoint(name: str, address: str) -> Endpoint:
    host, port = parse_hostport(address, name)
    return Endpoint(name=name, host=host, port=port)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def from_env(
    self_addr: str | None,
    sentinels: str | None,
    peers: str | None,
    master_name: str | None,
    password_file: str | None,
    password_env: str | None,
) -> tuple[Inventory, Endpoint]:
    """An in-memory inventory from arguments/environment, for hosts without an inventory file."""
    self_addr = self_addr or os.environ.get("REDIS_HA_SELF")
    sentinels = sentinels or os.environ.get("REDIS_HA_SENTINELS")
    if not self_addr or not sentinels:
        raise InventoryError(
            "say where the cluster is: --inventory PATH --node NAME, or --self HOST:PORT and "
            "--sentinels H:P,H:P,H:P (or $REDIS_HA_SELF and $REDIS_HA_SENTINELS)"
        )
    me = _endpoint("self", self_addr)
    peer_list = _split(peers or os.environ.get("REDIS_HA_PEERS"))
    nodes = (me, *(_endpoint(f"peer-{i + 1}", a) for i, a in enumerate(peer_list)))
    sents = tuple(_endpoint(f"sentinel-{i + 1}", a) for i, a in enumerate(_split(sentinels)))
    pw_file = password_file or os.environ.get("REDIS_HA_PASSWORD_FILE")
    inv = Inventory(
        path=Path("<environment>"),
        name="safestart",
        master_name=master_name or os.environ.get("REDIS_HA_MASTER_NAME") or "mymaster",
        nodes=nodes,
        sentinels=sents,
        settings=Settings(),
        auth=Auth(
            password_env=password_env or "REDIS_HA_PASSWORD",
            password_file=Path(pw_file) if pw_file else None,
        ),
        lab=False,
        lab_dir=Path("/nonexistent"),
        control={},
    )
    if not pw_file and not os.environ.get(inv.auth.password_env or ""):
        inv = dataclasses.replace(inv, auth=Auth())  # no password configured: no auth
    return inv, me


# --- looking and acting ------------------------------------------------------------------------


def addresses(me: Endpoint) -> tuple[str, ...]:
    """Every address this node is known by: the tool's and the one it announces to the cluster."""
    host, port = me.announced
    return (me.address, f"{host}:{port}")


def cluster_address(inv: Inventory, address: str) -> str:
    """The address the cluster uses for a node (its announced one), for `--replicaof`."""
    host, _, port = address.rpartition(":")
    node = inv.node_by_address(host, port) if port.isdigit() else None
    if node is None:
        return address
    h, p = node.announced
    return f"{h}:{p}"


def look(inv: Inventory, me: Endpoint) -> tuple[list[SentinelFacts], list[NodeFacts]]:
    """Every Sentinel's view, then the other nodes (inventory + what the Sentinels list)."""
    with ThreadPoolExecutor(max_workers=max(1, len(inv.sentinels))) as pool:
        views = list(pool.map(lambda s: sentinel_facts(inv, s, detail=True), inv.sentinels))
    addrs: dict[str, Endpoint] = {n.address: n for n in inv.nodes if n != me}
    for v in views:
        found = [v.primary] if v.primary else []
        found += [f"{r.get('ip')}:{r.get('port')}" for r in v.replicas if r.get("ip")]
        for a in found:
            host, _, port = a.rpartition(":")
            if port.isdigit() and inv.node_by_address(host, port) is not None:
                continue  # an inventory node (maybe by its announced address): already listed
            if not any(same_addr(a, m) for m in addresses(me)):
                addrs[a] = _endpoint(a, a)
    with ThreadPoolExecutor(max_workers=max(1, len(addrs))) as pool:
        peers = list(pool.map(lambda ep: node_facts(inv, ep), addrs.values()))
    return views, peers


def named_primary(inv: Inventory) -> str | None:
    """The address a majority of the listed Sentinels names, if any."""
    with ThreadPoolExecutor(max_workers=max(1, len(inv.sentinels))) as pool:
        views = list(pool.map(lambda s: sentinel_facts(inv, s, detail=False), inv.sentinels))
    return majority_primary(views, len(inv.sentinels))[0]


def hand_over(inv: Inventory, me: Endpoint, timeout: float) -> tuple[str | None, str]:
    """Ask the Sentinels to fail over away from this (down) node; the new primary, or None + why."""
    deadline = time.monotonic() + timeout
    asked, last = False, "no Sentinel answered"
    while time.monotonic() < deadline:
        now = named_primary(inv)
        if now and not any(same_addr(now, m) for m in addresses(me)):
            return now, "failed over"
        if not asked:
            for s in inv.sentinels:
                c = client(inv, s, timeout=1.0)
                try:
                    c.execute_command("SENTINEL", "FAILOVER", inv.master_name)
                    asked = True
                    break
                except redis.ResponseError as e:
                    last = f"{s.name}: {e}"
                    if "INPROG" in str(e):
                        asked = True
                        break
                except (redis.ConnectionError, redis.TimeoutError) as e:
                    last = f"{s.name}: {describe_error(e)}"
                finally:
                    c.close()
        time.sleep(0.1 if asked else 0.5)
    return None, last


def log(node: str, text: str) -> None:
    print(f"{PREFIX}: {node}: {text}", file=sys.stderr, flush=True)


def final_argv(argv: list[str], decision: Decision, replicaof: str | None) -> list[str]:
    """redis-server's argv with the role appended (later options win over the config file)."""
    out = list(argv)
    if decision.mode == "configured":
        return out
    if replicaof is None:
        return [*out, "--replicaof", "no", "one"]
    host, _, port = replicaof.rpartition(":")
    return [*out, "--replicaof", host, port]


def _directives(argv: list[str]) -> dict[str, str]:
    """dir, dbfilename, save and appendonly as redis-server will see them (file, then argv)."""
    found: dict[str, str] = {}
    wanted = ("dir", "dbfilename", "save", "appendonly")
    conf = next((a for a in argv[1:] if not a.startswith("--")), None)
    if conf:
        try:
            lines = Path(conf).read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if words and words[0].lower() in wanted:
                found[words[0].lower()] = " ".join(words[1:])
    for i, a in enumerate(argv[:-1]):
        if a.startswith("--") and a[2:].lower() in wanted:
            found[a[2:].lower()] = argv[i + 1]
    return found


def stale_snapshot(argv: list[str]) -> Path | None:
    """The RDB a replica wrote at its last full sync, when the node runs without persistence.

    Redis writes the replication snapshot to `dir/dbfilename` even with `save ""`, and loads it
    at the next start: a node that "has no persistence" would come back with old sessions (a
    logged-out session among them). With `save ""` and `appendonly no` the file is not data.
    """
    d = _directives(argv)
    if d.get("save", None) != "" or d.get("appendonly", "no").lower() == "yes":
        return None
    p = Path(d.get("dir") or ".") / (d.get("dbfilename") or "dump.rdb")
    return p if p.is_file() else None


def run(inv: Inventory, me: Endpoint, argv: list[str], *, bootstrap: bool, timeout: float) -> None:
    """Decide, log one line, exec redis-server (never returns on success)."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise HAError(f"{argv[0]}: not found on PATH", code=127)
    views, peers = look(inv, me) if not bootstrap else ([], [])
    d = decide(addresses(me), views, peers, n_sentinels=len(inv.sentinels), bootstrap=bootstrap)
    target = cluster_address(inv, d.replicaof) if d.replicaof else None
    reason = d.reason
    if d.mode == "handover":
        t0 = time.monotonic()
        new, why = hand_over(inv, me, timeout)
        took = time.monotonic() - t0
        if new:
            target = new
            who = inv.name_of(new)
            reason += f"; Sentinels failed over to {who} in {took:.1f} s: starting as its replica"
        else:
            reason += (
                f"; no failover within {took:.0f} s ({why}): starting as replica of {target}, "
                "never as an empty primary (see runbooks/safe-restart.md)"
            )
    stale = stale_snapshot(argv)
    if stale is not None:
        stale.unlink()
        reason += f"; removed {stale} left by an earlier full sync (persistence is off)"
    role = "as configured" if d.mode == "configured" else f"replicaof {target or 'no one'}"
    log(me.name if me.name != "self" else me.address, f"{reason} [{role}]")
    os.execv(exe, final_argv(argv, d, target))


def wrap_argv(inv: Inventory, node: Endpoint, argv: list[str]) -> list[str]:
    """The lab's way to start `argv` through this wrapper (same interpreter, same inventory)."""
    return [
        sys.executable,
        "-m",
        "redis_ha.safestart",
        "--inventory",
        str(inv.path),
        "--node",
        node.name,
        "--",
        *argv,
    ]


def parse(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in args:
        raise InventoryError("give the redis-server command after '--'")
    cut = args.index("--")
    own, server = args[:cut], args[cut + 1 :]
    p = argparse.ArgumentParser(prog="python -m redis_ha.safestart", description=__doc__)
    p.add_argument("--inventory", help="inventory file (with --node)")
    p.add_argument("--node", help="this node's name in the inventory")
    p.add_argument("--self", dest="self_addr", help="this node's host:port ($REDIS_HA_SELF)")
    p.add_argument("--sentinels", help="h:p,h:p,h:p ($REDIS_HA_SENTINELS)")
    p.add_argument("--peers", help="the other nodes, h:p,h:p ($REDIS_HA_PEERS; optional)")
    p.add_argument("--master-name", help="Sentinel master name ($REDIS_HA_MASTER_NAME)")
    p.add_argument("--password-file", help="password file ($REDIS_HA_PASSWORD_FILE)")
    p.add_argument("--password-env", help="variable holding the password (REDIS_HA_PASSWORD)")
    p.add_argument("--bootstrap", action="store_true", help="start as configured, ask nobody")
    p.add_argument("--handover-timeout", type=float, help="seconds to wait for a failover")
    ns = p.parse_args(own)
    if not server:
        raise InventoryError("give the redis-server command after '--'")
    # Arguments a procedure wants from the next start (replicaof, replica-priority 0), set by a
    # control backend where it cannot change the command line: a unit's EnvironmentFile (ssh),
    # a service variable (Railway).
    return ns, server + shlex.split(os.environ.get("REDIS_HA_ARGS", ""))


def main(args: list[str] | None = None) -> int:
    try:
        ns, server = parse(list(sys.argv[1:] if args is None else args))
        if ns.inventory or ns.node:
            if not (ns.inventory and ns.node):
                raise InventoryError("--inventory and --node go together")
            inv = invmod.load(ns.inventory)
            me = inv.node(ns.node)
        else:
            inv, me = from_env(
                ns.self_addr,
                ns.sentinels,
                ns.peers,
                ns.master_name,
                ns.password_file,
                ns.password_env,
            )
        bootstrap = ns.bootstrap or os.environ.get("REDIS_HA_BOOTSTRAP", "") in ("1", "true", "yes")
        env_timeout = os.environ.get("REDIS_HA_HANDOVER_TIMEOUT")
        timeout = ns.handover_timeout or (float(env_timeout) if env_timeout else None)
        run(inv, me, server, bootstrap=bootstrap, timeout=timeout or DEFAULT_HANDOVER_S)
    except HAError as e:
        print(f"{PREFIX}: error: {e}", file=sys.stderr)
        return e.code if e.code != 1 else 2
    except ValueError as e:
        print(f"{PREFIX}: error: {e}", file=sys.stderr)
        return 2
    return 0  # pragma: no cover - run() exec()s


if __name__ == "__main__":
    sys.exit(main())
