"""The app's variables on Railway, changed through the Railway CLI.

Targets the Railway CLI's `variable list|set|delete` subcommands (checked against the railwayapp
sources: present in 4.61, absent in 4.20, whose `railway variables` only had `--set` and no way
to delete; upgrade an older CLI) and `redeploy` (unchanged since 4.0):

    railway variable list   --service S --kv
    railway variable set    KEY --stdin --service S --skip-deploys     (value on stdin)
    railway variable delete KEY --service S
    railway redeploy        --service S --yes

Values are passed on stdin (`--stdin`), never on the command line, so a password inside a value
never shows in `ps`, shell history or our journal. Better still, point REDIS_URL at a Railway
variable reference (inventory `app.redis_url: ${{legacy.REDIS_URL}}`): Railway resolves it and the
secret never passes through this tool at all. Variables are set with `--skip-deploys` so that the
app restarts exactly once, at the redeploy step, with the complete new configuration.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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

    def __init__(self, service: str, *, binary: str = "railway", timeout: float = 120) -> None:
        self.service = service
        self.binary = binary
        self.timeout = timeout

    def where(self) -> str:
        return f"Railway service {self.service!r}"

    def _run(self, *args: str, stdin: str | None = None) -> str:
        exe = shutil.which(self.binary)
        if exe is None:
            raise AppConfigError(
                f"the Railway CLI ({self.binary!r}) is not on PATH: install it "
                "(npm i -g @railway/cli) and run `railway login` and `railway link`"
            )
        argv = [exe, *args]
        shown = " ".join([self.binary, *args])
        try:
            p = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise AppConfigError(f"`{shown}` did not finish within {self.timeout:.0f} s") from None
        except OSError as e:
            raise AppConfigError(f"`{shown}` could not run: {e.strerror}") from None
        if p.returncode != 0:
            # stderr of `variable` commands never echoes values; stdout of `list --kv` would.
            last = (p.stderr.strip().splitlines() or ["no error output"])[-1]
            raise AppConfigError(f"`{shown}` failed (exit {p.returncode}): {last[:200]}")
        return p.stdout

    def read(self) -> dict[str, str] | None:
        out = self._run("variable", "list", "--service", self.service, "--kv")
        values = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                values[key.strip()] = value
        return values

    def _set(self, changes: dict[str, str | None]) -> None:
        for key, value in changes.items():
            if value is None:
                continue
            self._run(
                "variable",
                "set",
                key,
                "--stdin",
                "--service",
                self.service,
                "--skip-deploys",
                stdin=value + "\n",
            )
        current = None
        for key, value in changes.items():
            if value is not None:
                continue
            if current is None:
                current = self.read() or {}
            if key in current:  # deleting a missing variable is an error in the CLI
                self._run("variable", "delete", key, "--service", self.service)

    def apply(
        self,
        changes: dict[str, str | None],
        backup_dir: Path,
        previous: dict[str, str | None] | None = None,
    ) -> Path:
        before = self.read() or {}
        old = {k: before[k] for k in changes if k in before}
        absent = [k for k in changes if k not in before]
        saved = write_backup(backup_dir, f"railway-{self.service}", old, absent)
        self._set(changes)
        return saved

    def restore(self, backup: Path) -> None:
        self._set(read_backup(backup))

    def redeploy_args(self) -> list[str]:
        """The CLI arguments of the redeploy (what a plan shows)."""
        return ["redeploy", "--service", self.service, "--yes"]

    def redeploy(self) -> str:
        self._run(*self.redeploy_args())
        return f"redeployed Railway service {self.service!r}"
