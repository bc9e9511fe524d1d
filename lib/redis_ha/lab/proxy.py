"""The lab's partition proxies: one small asyncio process forwarding each node's announced port.

In a partitionable lab every node announces a proxy port (`announce` in the inventory): Sentinels
monitor the proxy, replicas replicate through the primary's proxy, so ALL intra-cluster traffic to
a node crosses its proxy, while the node's own port stays directly reachable for clients and for
this tool. Isolating node X then means, in both directions:

- inbound: X's proxy stops forwarding every connection (Sentinel pings, replicas syncing from X);
- outbound: X's own connections (its replication link, when X is a replica) cross the OTHER
  nodes' proxies; plain TCP on loopback does not say who connected, so the proxy asks the kernel:
  the peer socket's inode from /proc/net/tcp, then which lab node's process holds that inode.

A cut connection is frozen, not closed: nothing is forwarded either way and nothing is read, as
in a real partition, so the old primary keeps acknowledging writes until min-replicas-max-lag
passes. Healing closes the frozen connections (peers reconnect at once) and forwards again.

Run as `python -m redis_ha.lab.proxy STATE_DIR`; `config.json` there lists the routes,
`isolated.json` the isolated nodes (re-read every 50 ms), `applied` echoes the generation applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis_ha.inventory import Inventory

POLL_S = 0.05


def config(inv: Inventory, pidfiles: dict[str, str]) -> dict[str, Any]:
    """The `config.json` for `inv`: a route from each node's announced port to its own port, and
    where each node's pid file is (to tell which node opened a connection)."""
    routes = []
    for n in inv.nodes:
        host, port = n.announced
        if (host, port) != (n.host, n.port):
            routes.append({"node": n.name, "listen": [host, port], "target": [n.host, n.port]})
    return {"routes": routes, "pidfiles": pidfiles}


@dataclass(eq=False)
class Conn:
    node: str  # the node this proxy route leads to
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    source: str | None = None  # lab node that opened the connection, when known
    source_known: bool = False
    frozen: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _hexport(port: int) -> str:
    return f"{port:04X}"


def peer_inode(peer_port: int, local_port: int) -> str | None:
    """Inode of the loopback socket at the other end of our connection (ipv4 or ipv6)."""
    want_local, want_remote = _hexport(peer_port), _hexport(local_port)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            if f[1].endswith(":" + want_local) and f[2].endswith(":" + want_remote):
                return f[9]
    return None


def owner_of(inode: str, pids: dict[str, int]) -> str | None:
    """The node whose process holds socket `inode`."""
    target = f"socket:[{inode}]"
    for name, pid in pids.items():
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    return name
            except OSError:
                continue
    return None


class Proxy:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        cfg = json.loads((state_dir / "config.json").read_text())
        self.routes: list[dict] = cfg["routes"]
        self.pidfiles: dict[str, str] = cfg["pidfiles"]
        self.conns: set[Conn] = set()
        self.isolated: set[str] = set()
        self.gen = -1

    def node_pids(self) -> dict[str, int]:
        pids = {}
        for name, pf in self.pidfiles.items():
            try:
                pids[name] = int(Path(pf).read_text().strip())
            except (OSError, ValueError):
                continue
        return pids

    def identify(self, conn: Conn) -> None:
        if conn.source_known:
            return
        conn.source_known = True
        sock = conn.client.get_extra_info("socket")
        peer = conn.client.get_extra_info("peername")
        if sock is None or not peer:
            return
        inode = peer_inode(int(peer[1]), int(sock.getsockname()[1]))
        if inode:
            conn.source = owner_of(inode, self.node_pids())

    def blocked(self, conn: Conn) -> bool:
        if not self.isolated:
            return False
        if conn.node in self.isolated:
            return True
        self.identify(conn)
        return conn.source in self.isolated

    async def handle(self, node: str, target: tuple[str, int], r, w) -> None:  # type: ignore[no-untyped-def]
        conn = Conn(node=node, client=w)
        self.conns.add(conn)
        try:
            if self.blocked(conn):
                conn.frozen = True
                await conn.done.wait()
                return
            try:
                ur, uw = await asyncio.open_connection(*target)
            except OSError:
                return
            conn.upstream = uw
            await asyncio.gather(self.pump(conn, r, uw), self.pump(conn, ur, w))
        finally:
            self.conns.discard(conn)
            for wr in (w, conn.upstream):
                if wr is not None:
                    wr.close()

    async def pump(self, conn: Conn, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while not conn.done.is_set():
                read = asyncio.ensure_future(r.read(65536))
                stop = asyncio.ensure_future(conn.done.wait())
                await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    stop.cancel()
                    return
                stop.cancel()
                data = read.result()
                if not data:
                    break
                if conn.frozen:
                    await conn.done.wait()  # dropped: a partition delivers nothing
                    return
                w.write(data)
                await w.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            conn.done.set()

    def apply(self) -> None:
        try:
            state = json.loads((self.dir / "isolated.json").read_text())
        except (OSError, ValueError):
            state = {"gen": 0, "isolated": []}
        if state.get("gen") == self.gen:
            return
        self.isolated = set(state.get("isolated", []))
        for conn in list(self.conns):
            if conn.frozen and not self.blocked(conn):
                conn.done.set()  # heal: reset the frozen connection, the peer reconnects
            elif not conn.frozen and self.blocked(conn):
                conn.frozen = True
        self.gen = state.get("gen", 0)
        tmp = self.dir / "applied.tmp"
        tmp.write_text(str(self.gen))
        tmp.replace(self.dir / "applied")

    async def run(self) -> None:
        servers = []
        for route in self.routes:
            node, target = route["node"], (route["target"][0], int(route["target"][1]))

            async def cb(r, w, node=node, target=target):  # type: ignore[no-untyped-def]
                await self.handle(node, target, r, w)

            host, port = route["listen"][0], int(route["listen"][1])
            servers.append(await asyncio.start_server(cb, host, port, reuse_address=True))
        (self.dir / "ready").write_text("ok")
        while True:
            self.apply()
            await asyncio.sleep(POLL_S)


def main(argv: list[str]) -> None:
    state_dir = Path(argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Proxy(state_dir).run())


if __name__ == "__main__":
    main(sys.argv)
