"""Redis protocol traffic through SSH local forwards, for a network behind a bastion.

An endpoint with `control.tunnel: true` (its own, else the inventory's) is reached through a
forward from 127.0.0.1 on a free port to its `host:port` as the ssh server sees it: the jump
host of `control.ssh.jump` when one is given (a bastion inside the private network), else the
endpoint's ssh host. One forward per endpoint per process, over one ssh connection per host
(shared with the ssh control backend); names like `redis-1.internal` are resolved on the far
side, so they need not resolve on the operator's laptop.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import TYPE_CHECKING, Any

from redis_ha.control.base import ControlError

if TYPE_CHECKING:
    from redis_ha.inventory import Endpoint, Inventory

_FORWARDS: dict[tuple[Any, str, int], tuple[str, int]] = {}
_LOCK = threading.Lock()


def wanted(inv: Inventory, ep: Endpoint) -> bool:
    """Whether `ep` is reached through a tunnel: its own `control.tunnel`, else the inventory's."""
    own = ep.control.get("tunnel")
    return bool(inv.control.get("tunnel") if own is None else own)


def local_address(inv: Inventory, ep: Endpoint) -> tuple[str, int]:
    """The 127.0.0.1 address that reaches `ep` through its tunnel (opened on first use)."""
    from redis_ha.control import ssh

    t = ssh.target(inv, ep)
    via = t.jump or t
    key = (via, ep.host, ep.port)
    with _LOCK:
        found = _FORWARDS.get(key)
        if found is not None:
            return found
    try:
        conn = ssh.connection(via)
    except ControlError as e:
        raise ControlError(f"{ep.name}: tunnel: {e}", code=e.code) from None
    with _LOCK:
        if key not in _FORWARDS:
            _FORWARDS[key] = _Forward(conn.transport, (ep.host, ep.port)).address
        return _FORWARDS[key]


class _Forward(threading.Thread):
    """Accepts on 127.0.0.1:<free port>; each connection becomes a direct-tcpip channel."""

    def __init__(self, transport: Any, dest: tuple[str, int]) -> None:
        super().__init__(daemon=True, name=f"tunnel-{dest[0]}:{dest[1]}")
        self.transport, self.dest = transport, dest
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.start()

    def run(self) -> None:
        while True:
            try:
                client, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, peer), daemon=True).start()

    def _serve(self, client: socket.socket, peer: tuple[str, int]) -> None:
        try:
            chan = self.transport.open_channel("direct-tcpip", self.dest, peer, timeout=10)
        except Exception:  # the far side refused or the ssh link is gone: like a refused port
            client.close()
            return
        try:
            _pump(client, chan)
        finally:
            chan.close()
            client.close()


def _pump(a: socket.socket, b: Any) -> None:
    """Copy bytes both ways until either side closes."""
    while True:
        ready, _, _ = select.select([a, b], [], [], 60)
        for src, dst in ((a, b), (b, a)):
            if src in ready:
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
