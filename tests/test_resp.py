"""resp.py reads what redis-py reads: the same INFO (keys, types, values), the same Sentinel
replies, the same error texts and credential verdicts, against real lab processes; and the
connection failures (refused, silent) on real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from redis_ha import conn, resp
from redis_ha.inventory import Endpoint
from redis_ha.lab.cluster import Lab
from redis_ha.lab.ports import free_ports

# INFO fields that do not move between two reads a moment apart on an idle lab node.
STILL = ("role", "run_id", "process_id", "tcp_port", "redis_version", "connected_slaves",
         "maxmemory", "master_host", "master_port", "executable", "config_file")  # fmt: skip


def both(lab: Lab, ep: Endpoint, **kw: Any) -> tuple[resp.Connection, redis.Redis]:
    return conn.reader(lab.inv, ep, **kw), conn.client(lab.inv, ep, **kw)


@pytest.mark.lab
def test_info_parses_as_redis_py_parses_it(lab: Lab) -> None:
    for ep in lab.inv.nodes:
        q, r = both(lab, ep)
        with q:
            mine = resp.parse_info(q.call("INFO", "all"))
        theirs = r.info("all")
        r.close()
        # Two reads a moment apart: a keyspace line (keys expiring) or a replica line (one
        # reconnecting) may come or go between them; every other field is in both.
        moved = set(mine) ^ set(theirs)
        assert all(k.startswith(("db", "slave")) for k in moved), moved
        assert len(set(mine) & set(theirs)) > 100
        wrong = {k for k in set(mine) & set(theirs) if type(mine[k]) is not type(theirs[k])}
        assert not wrong, {k: (mine[k], theirs[k]) for k in wrong}
        for k in STILL:
            assert mine.get(k) == theirs.get(k), k
        if mine["role"] == "master" and "slave0" in mine and "slave0" in theirs:
            assert mine["slave0"].keys() == theirs["slave0"].keys()  # nested k=v,k=v dicts


@pytest.mark.lab
def test_sentinel_replies_are_redis_pys(lab: Lab) -> None:
    m = lab.inv.master_name
    ep = lab.inv.sentinels[0]
    q, r = both(lab, ep)
    try:
        cmds = [("SENTINEL", "GET-MASTER-ADDR-BY-NAME", m), ("SENTINEL", "CKQUORUM", m)]
        assert q.pipeline(*cmds) == [r.execute_command(*c) for c in cmds]
        (flat,) = q.pipeline(("SENTINEL", "MASTER", m))
        mine = dict(zip(flat[::2], flat[1::2], strict=True))  # raw [k, v, ...]: facts._pairs
        theirs = r.execute_command("SENTINEL", "MASTER", m)  # redis-py types some values
        assert set(mine) <= set(theirs)
        for k in ("name", "ip", "port", "flags", "quorum", "config-epoch", "num-slaves"):
            assert mine[k] == str(theirs[k]), k
    finally:
        q.close()
        r.close()


@pytest.mark.lab
def test_an_error_reply_is_data_in_its_place_with_redis_pys_text(lab: Lab) -> None:
    q, r = both(lab, lab.inv.nodes[0])
    try:
        ok, bad, after = q.pipeline(("PING",), ("NO-SUCH-COMMAND", "x"), ("ECHO", "still here"))
        assert (ok, after) == ("PONG", "still here")
        assert isinstance(bad, resp.ReplyError) and bad.code == "ERR"
        with pytest.raises(redis.ResponseError) as theirs:
            r.execute_command("NO-SUCH-COMMAND", "x")
        assert str(bad) == str(theirs.value)
    finally:
        q.close()
        r.close()


@pytest.mark.lab
@pytest.mark.parametrize("password", ["not-the-password", None], ids=["wrong", "none"])
def test_refused_credentials_read_as_redis_pys(lab: Lab, password: str | None) -> None:
    ep = lab.inv.nodes[0]
    q = resp.Connection(ep.host, ep.port, timeout=1.0, password=password)
    with q:
        try:
            (reply,) = q.pipeline(("INFO", "server"))
        except resp.AuthError as e:
            reply = e
    assert isinstance(reply, resp.ReplyError), reply
    r = redis.Redis(host=ep.host, port=ep.port, password=password, socket_timeout=1.0)
    with pytest.raises(redis.RedisError) as theirs:
        r.info("server")
    r.close()
    assert conn.credential_problem(reply) == conn.credential_problem(theirs.value) is not None
    assert conn.describe_error(reply, lab.inv) == conn.describe_error(theirs.value, lab.inv)


def test_connection_refused_reads_as_redis_pys() -> None:
    (port,) = free_ports(1)
    with pytest.raises(resp.ConnectError) as mine:
        resp.Connection("127.0.0.1", port, timeout=0.5).call("PING")
    with pytest.raises(redis.ConnectionError) as theirs:
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, retry=None).ping()
    assert str(mine.value) == str(theirs.value)
    assert conn.describe_error(mine.value) == "connection refused (not running?)"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung node, as the client sees it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def test_a_silent_node_costs_one_timeout(silent_port: int) -> None:
    c = resp.Connection("127.0.0.1", silent_port, timeout=0.2)
    with pytest.raises(resp.Timeout) as e:
        c.pipeline(("INFO", "all"), ("DBSIZE",))
    assert conn.describe_error(e.value) == "timed out (node hung or unreachable)"
    assert conn.credential_problem(e.value) is None
