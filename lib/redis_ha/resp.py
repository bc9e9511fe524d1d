"""A small RESP2 client on the standard library: what facts.py reads every node and Sentinel with.

`status` and `health` run from cron and monitors as whole processes, and importing redis-py
alone took 0.13-0.43 s (its asyncio half, `importlib.metadata`), more than the 0.15 s they
may take. Gathering facts needs far less: connect (TCP, or TLS with the inventory's files),
AUTH, then one pipelined write of a few read-only commands and their replies. This module does
exactly that, with redis-py's semantics where they show in the facts: no retries, a connect
timeout and a socket timeout, INFO parsed as redis-py parses it (`parse_info`), and redis-py's
error texts (the prefix code stripped, "Error 111 connecting to host:port. Connection
refused."), so a verdict or an error line reads the same whichever client read the node.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

CRLF = b"\r\n"
# The error codes redis-py strips from an error reply's text (its parser's EXCEPTION_CLASSES).
STRIPPED_CODES = frozenset(
    [
        "ERR",
        "OOM",
        "WRONGPASS",
        "EXECABORT",
        "LOADING",
        "NOSCRIPT",
        "READONLY",
        "NOAUTH",
        "NOPERM",
        "ASK",
        "TRYAGAIN",
        "MOVED",
        "CLUSTERDOWN",
        "CROSSSLOT",
        "MASTERDOWN",
    ]
)


class Error(Exception):
    """Anything that went wrong talking to one endpoint."""


class ConnectError(Error):
    """Could not connect, or the connection broke (redis.ConnectionError's place)."""


class Timeout(Error):
    """No answer within the timeout (redis.TimeoutError's place)."""


class ReplyError(Error):
    """The server answered with an error; `code` is its first word (NOAUTH, WRONGPASS, ERR)."""

    def __init__(self, text: str):
        code = text.split(" ", 1)[0]
        self.code = code
        super().__init__(text[len(code) + 1 :] if code in STRIPPED_CODES else text)


class AuthError(ReplyError):
    """The server refused our AUTH (wrong password, unknown user, or no password is set)."""


class Connection:
    """One connection, opened on first use; `pipeline` sends every command in one write.

    Not thread-safe: one per thread (facts.py opens one per endpoint per sweep)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        connect_timeout: float | None = None,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        name: str | None = None,
    ):
        self.host, self.port = host, port
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.username, self.password = username, password
        self.ssl_context = ssl_context
        self.name = name
        self._sock: socket.socket | None = None
        self._buf = b""

    # --- the two calls ---------------------------------------------------------------------

    def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Every command's reply, in order; an error reply is a ReplyError in its place."""
        prelude: list[tuple[Any, ...]] = []
        if self._sock is None:
            self._connect()
            if self.password is not None:
                who = (self.username,) if self.username else ()
                prelude.append(("AUTH", *who, self.password))
            if self.name:
                prelude.append(("CLIENT", "SETNAME", self.name))
        self._send([*prelude, *commands])
        replies = [self._reply() for _ in range(len(prelude) + len(commands))]
        if prelude and prelude[0][0] == "AUTH" and isinstance(replies[0], ReplyError):
            raise AuthError(_raw(replies[0]))
        # A name we may not set (a least-privilege ACL user) is no reason to fail a read.
        return replies[len(prelude) :]

    def call(self, *args: Any) -> Any:
        """One command's reply; an error reply is raised."""
        (reply,) = self.pipeline(args)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def close(self) -> None:
        sock, self._sock, self._buf = self._sock, None, b""
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the wire ----------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> None:
        # An ASCII host as bytes: a str makes getaddrinfo load the idna codec (and unicodedata).
        # create_connection hands it to getaddrinfo, which takes bytes (typeshed says str).
        host: Any = self.host.encode() if self.host.isascii() else self.host
        try:
            sock = socket.create_connection((host, self.port), timeout=self.connect_timeout)
        except TimeoutError:
            raise Timeout("Timeout connecting to server") from None
        except OSError as e:
            raise ConnectError(connect_error_text(self._where(), e)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.timeout)
        except TimeoutError:
            sock.close()
            raise Timeout("Timeout connecting to server") from None
        except OSError as e:
            sock.close()
            raise ConnectError(connect_error_text(self._where(), e)) from None
        self._sock = sock

    def _send(self, commands: list[tuple[Any, ...]]) -> None:
        out = bytearray()
        for cmd in commands:
            out += b"*%d\r\n" % len(cmd)
            for a in cmd:
                b = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(b), b)
        assert self._sock is not None
        try:
            self._sock.sendall(out)
        except TimeoutError:
            self.close()
            raise Timeout("Timeout writing to socket") from None
        except OSError as e:
            self.close()
            raise ConnectError(f"Error {e.args[0]} while writing to socket. {e}.") from None

    def _fill(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            self.close()
            raise Timeout("Timeout reading from socket") from None
        except OSError as e:
            self.close()
            raise ConnectError(f"Error while reading from {self._where()} : {e.args}") from None
        if not chunk:
            self.close()
            raise ConnectError("Connection closed by server.")
        self._buf += chunk

    def _line(self) -> bytes:
        while (i := self._buf.find(CRLF)) < 0:
            self._fill()
        line, self._buf = self._buf[:i], self._buf[i + 2 :]
        return line

    def _exact(self, n: int) -> bytes:
        while len(self._buf) < n + 2:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n + 2 :]
        return data

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        self.close()
        raise ConnectError(f"Protocol error, got {line[:20]!r} as reply type byte")


def _raw(e: ReplyError) -> str:
    """The error reply as the server sent it (the code put back)."""
    text = str(e)
    return f"{e.code} {text}" if e.code in STRIPPED_CODES else text


def connect_error_text(where: str, e: OSError) -> str:
    """redis-py's text for a failed connect (utils.format_error_message)."""
    if not e.args:
        return f"Error connecting to {where}."
    if len(e.args) == 1:
        return f"Error {e.args[0]} connecting to {where}."
    return f"Error {e.args[0]} connecting to {where}. {e.args[1]}."


def parse_info(response: str) -> dict[str, Any]:
    """INFO's text as redis-py parses it (redis/_parsers/helpers.py, parse_info, MIT): numbers
    as int or float, `k=v,k=v` values as dicts, so the facts read the same either way."""
    info: dict[str, Any] = {}

    def get_value(value: str) -> Any:
        if "," not in value and "=" not in value:
            try:
                return float(value) if "." in value else int(value)
            except ValueError:
                return value
        if "=" not in value:
            return [get_value(v) for v in value.split(",") if v]
        sub: dict[str, Any] = {}
        for item in value.split(","):
            if not item:
                continue
            if "=" in item:
                k, v = item.rsplit("=", 1)
                sub[k] = get_value(v)
            else:
                sub[item] = True
        return sub

    for line in response.splitlines():
        if not line or line.startswith("#"):
            continue
        if ":" in line:
            key, value = line.split(":", 1)
            if key == "cmdstat_host":
                key, value = line.rsplit(":", 1)
            if key == "module":
                info.setdefault("modules", []).append(get_value(value))
            else:
                info[key] = get_value(value)
        else:
            info.setdefault("__raw__", []).append(line)
    return info
