"""The warm-up copier's one retry: pure logic (the real cut connection is the fault table's
lost-connection cells in test_faults_rollback.py)."""

from __future__ import annotations

import pytest
import redis

from redis_ha import keycopy


def test_a_dropped_connection_is_tried_once_more_and_said() -> None:
    calls: list[int] = []
    said: list[str] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("Connection closed by server.")
        return "batch done"

    assert keycopy._again_once(flaky, said.append) == "batch done"
    assert len(calls) == 2 and "reconnecting once" in said[0]


def test_a_node_that_is_gone_fails_the_second_try_too() -> None:
    def gone() -> str:
        raise redis.ConnectionError("Connection refused.")

    with pytest.raises(redis.ConnectionError):
        keycopy._again_once(gone, lambda s: None)


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def wrong() -> str:
        calls.append(1)
        raise redis.ResponseError("BUSYKEY")

    with pytest.raises(redis.ResponseError):
        keycopy._again_once(wrong, lambda s: None)
    assert len(calls) == 1
