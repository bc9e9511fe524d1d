"""The app's variables on Railway, changed through the Railway CLI.

Targets the Railway CLI's `variable list|set|delete` subcommands (checked against the railwayapp
sources: present in 4.61, absent in 4.20, whose `railway variables` only had `--set` and no way
to delete; upgrade an older CLI) and `redeploy` (unchanged since 4.0):

    railway variable list   --service S [--environment E] --json
    railway variable set    KEY --stdin --service S [--environment E] --skip-deploys  (stdin)
    railway variable delete KEY --service S [--environment E]
    railway redeploy        --service S [--environment E] --yes

The environment is the inventory's `app.environment` (else the linked one); how the CLI is run
and authenticated (RAILWAY_TOKEN / RAILWAY_API_TOKEN) is redis_ha.railway_cli.

Values are passed on stdin (`--stdin`), never on the command line, so a password inside a value
never shows in `ps`, shell history or our journal. Better still, point REDIS_URL at a Railway
variable reference (inventory `app.redis_url: ${{legacy.REDIS_URL}}`): Railway resolves it and the
secret never passes through this tool at all. Variables are set with `--skip-deploys` so that the
app restarts exactly once, at the redeploy step, with the complete new configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

from redis_ha import railway_cli
from redis_ha.appconfig import (
    VAR_MASTER,
    VAR_PASSWORD_FILE,
    VAR_SENTINELS,
    VAR_URL,
    AppConfigError,
    read_backup,
    write_backup,
)

WATCHED = (VAR_URL, VAR_SENTINELS, VAR_MASTER, VAR_PASSWORD_FILE)


class RailwayBackend:
    """Set/unset the app service's variables and redeploy it with the Railway CLI."""

    name = "railway"

    def __init__(
        self,
        service: str,
        *,
        binary: str = "railway",
        timeout: float = 120,
        environment: str | None = None,
    ) -> None:
        self.service = service
        self.environment = environment
        self.binary = binary
        self.timeout = timeout

    def where(self) -> str:
        env = f" ({self.environment})" if self.environment else ""
        return f"Railway service {self.service!r}{env}"

    def _run(self, *args: str, stdin: str | None = None) -> str:
        return railway_cli.run(
            self.binary, list(args), stdin=stdin, timeout=self.timeout, error=AppConfigError
        )

    def _scope(self) -> list[str]:
        return railway_cli.scope(self.service, self.environment)

    def read(self) -> dict[str, str] | None:
        out = self._run("variable", "list", *self._scope(), "--json")
        try:
            data = json.loads(out)
        except ValueError:
            data = None
        if not isinstance(data, dict):  # never echo the output: it holds the values
            raise AppConfigError(f"`railway variable list` for {self.where()}: not a JSON object")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}

    def _set(self, changes: dict[str, str | None]) -> None:
        for key, value in changes.items():
            if value is None:
                continue
            self._run(*railway_cli.set_variable(key, self._scope()), stdin=value + "\n")
        current = None
        for key, value in changes.items():
            if value is not None:
                continue
            if current is None:
                current = self.read() or {}
            if key in current:  # deleting a missing variable is an error in the CLI
                self._run("variable", "delete", key, *self._scope())

    def apply(
        self,
        changes: dict[str, str | None],
        backup_dir: Path,
        previous: dict[str, str | None] | None = None,
        key: str | None = None,
    ) -> Path:
        before = self.read() or {}
        old = {k: before[k] for k in changes if k in before}
        absent = [k for k in changes if k not in before]
        saved = write_backup(backup_dir, f"railway-{self.service}", old, absent, key)
        self._set(changes)
        return saved

    def restore(self, backup: Path) -> None:
        self._set(read_backup(backup))

    def redeploy_args(self) -> list[str]:
        """The CLI arguments of the redeploy (what a plan shows)."""
        return ["redeploy", *self._scope(), "--yes"]

    def redeploy(self) -> str:
        self._run(*self.redeploy_args())
        return f"redeployed Railway service {self.service!r}"
