"""Railway services (one per node or Sentinel), through the Railway CLI (redis_ha.railway_cli).

    is_running  railway service status --service S [--environment E] --json
    stop        railway down --service S [--environment E] --yes
    restart     railway restart --service S [--environment E] --yes    (same variables)
    start, or a restart with new arguments:
                railway variable set REDIS_HA_ARGS --stdin ... --skip-deploys   (and
                REDIS_HA_BOOTSTRAP), railway redeploy ... --yes, then both variables set
                back to "" (--skip-deploys) once the node answers
    log_tail    railway logs --service S [--environment E] --deployment --lines N --json

The service is the node's `control.service` (default its name), the environment the node's or
the inventory's `control.environment` (default: the CLI's linked one). A Railway service starts
redis-server through redis_ha.safestart, which appends `$REDIS_HA_ARGS` (replicaof, priority 0
from the first instant) and starts as configured when `$REDIS_HA_BOOTSTRAP` is 1 (`safe=False`).
A restart keeps the deployment's variables; new ones take a redeploy, hence the two paths.
The variables are reset after the start so a later platform restart is a plain safe start.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from redis_ha import railway_cli
from redis_ha.control.base import Control, ControlError, server_words, wait_until
from redis_ha.inventory import Endpoint

BINARY = "railway"
# `service status --json` statuses of a deployment whose process runs (or is being replaced).
RUNNING = frozenset({"SUCCESS", "DEPLOYING", "INITIALIZING"})
START_TIMEOUT = 180.0  # a redeploy builds nothing (same image) but is scheduled by Railway
STOP_TIMEOUT = 60.0


class RailwayControl(Control):
    """A node that is a Railway service: status, down, restart, redeploy and logs by the CLI."""

    backend = "railway"

    def _cli(self, node: Endpoint, *args: str, stdin: str | None = None) -> str:
        return railway_cli.run(
            BINARY, list(args), stdin=stdin, error=ControlError, who=node.name, code=3
        )

    def _scope(self, node: Endpoint) -> list[str]:
        env = node.control.get("environment") or self.inv.control.get("environment")
        return railway_cli.scope(str(node.control.get("service") or node.name), env)

    def is_running(self, node: Endpoint) -> bool:
        out = self._cli(node, "service", "status", *self._scope(node), "--json")
        try:
            st: Any = json.loads(out)
        except ValueError:
            st = None
        if not isinstance(st, dict):
            raise ControlError(f"{node.name}: `railway service status` did not answer JSON", code=3)
        return str(st.get("status", "")).upper() in RUNNING and not st.get("stopped", False)

    def stop(self, node: Endpoint) -> None:
        if not self.is_running(node):
            return
        self._cli(node, "down", *self._scope(node), "--yes")
        self._wait(node, STOP_TIMEOUT, "stop", lambda: not self.is_running(node))

    def _start(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> None:
        self._deploy(node, replicaof, overrides, safe)

    def _restart(
        self,
        node: Endpoint,
        replicaof: Endpoint | None,
        overrides: dict[str, str],
        safe: bool | None,
    ) -> None:
        """A plain restart keeps the deployment's variables; new arguments take a redeploy."""
        if replicaof is None and not overrides and safe is None and self.is_running(node):
            before = self._run_id(node)
            self._cli(node, "restart", *self._scope(node), "--yes")
            self._wait(
                node, START_TIMEOUT, "restart", lambda: self._run_id(node) not in (None, before)
            )
            return
        super()._restart(node, replicaof, overrides, safe)

    def _deploy(
        self, node: Endpoint, replicaof: Endpoint | None, overrides: dict[str, str], safe: bool
    ) -> None:
        self._set(node, "REDIS_HA_ARGS", " ".join(server_words(replicaof, overrides)))
        self._set(node, "REDIS_HA_BOOTSTRAP", "" if safe else "1")
        try:
            self._cli(node, "redeploy", *self._scope(node), "--yes")
            self._wait(node, START_TIMEOUT, "answer", lambda: self._run_id(node) is not None)
        except ControlError:
            with contextlib.suppress(ControlError):  # the first error is the one to show
                self._reset(node)
            raise
        self._reset(node)

    def _reset(self, node: Endpoint) -> None:
        """Back to a plain safe start for whatever restarts the service next."""
        self._set(node, "REDIS_HA_ARGS", "")
        self._set(node, "REDIS_HA_BOOTSTRAP", "")

    def _set(self, node: Endpoint, key: str, value: str) -> None:
        self._cli(node, *railway_cli.set_variable(key, self._scope(node)), stdin=value + "\n")

    def log_tail(self, node: Endpoint, lines: int = 200) -> list[str] | None:
        if lines <= 0:
            return []
        out = self._cli(
            node, "logs", *self._scope(node), "--deployment", "--lines", str(lines), "--json"
        )
        found = []
        for raw in out.splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # the CLI's own notices between the JSON lines
            if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                found.append(entry["message"])
        return found[-lines:] or None

    def mem_available(self, node: Endpoint) -> int | None:
        return None  # Railway does not tell a service its host's free memory

    def _run_id(self, node: Endpoint) -> str | None:
        """The answering process's run_id (None: it does not answer yet)."""
        import redis

        from redis_ha.conn import client

        c = client(self.inv, node, timeout=1.0)
        try:
            return str(c.info("server")["run_id"])
        except redis.RedisError:
            return None
        finally:
            c.close()

    def _wait(self, node: Endpoint, timeout: float, what: str, done: Any) -> None:
        wait_until(
            done,
            timeout,
            f"{node.name}: Railway service did not {what} within {timeout:.0f} s; "
            "look at `railway logs` and the deployment in the dashboard",
        )
