"""Running the Railway CLI: one place for how it is found, called, timed out and reported.

Targets the Railway CLI 4.61, and every argument and JSON shape used here was checked again
against the railwayapp/cli sources of 5.43.1 (commit df3838b, 2026-08-21): `service status
--json` (one object: id, name, deploymentId, status such as SUCCESS/CRASHED, stopped),
`restart --yes`, `redeploy --yes`, `down --yes`, `logs --deployment --lines N --json` (one JSON
object per line: message, timestamp and the log's attributes; `--lines` fetches and exits
instead of streaming), `variable list --json | set KEY --stdin --skip-deploys`, each taking
`--service` and `--environment`. Authentication is the CLI's own, non-interactive through the
environment: `RAILWAY_TOKEN` (a project token, e.g. on an ops service) or `RAILWAY_API_TOKEN`
(an account token), else a `railway login` session. The tokens pass to the CLI in its
environment, never on its command line, and are blanked out of every error line this module
raises.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from redis_ha.errors import HAError

TOKEN_VARS = ("RAILWAY_TOKEN", "RAILWAY_API_TOKEN")
INSTALL_HINT = (
    "install it (npm i -g @railway/cli), then set RAILWAY_TOKEN (or RAILWAY_API_TOKEN) or run "
    "`railway login` and `railway link`"
)


def redact(text: str) -> str:
    """`text` with the values of the Railway token variables blanked out."""
    for var in TOKEN_VARS:
        value = os.environ.get(var)
        if value:
            text = text.replace(value, f"${var}")
    return text


def run(
    binary: str,
    args: list[str],
    *,
    stdin: str | None = None,
    timeout: float = 120,
    error: type[HAError] = HAError,
    who: str = "",
    code: int | None = None,
) -> str:
    """Run `binary ARGS`; its stdout, or one `error` line naming the command and the CLI's last
    error line (`who`, e.g. a node name, prefixes it)."""
    prefix = f"{who}: " if who else ""
    exe = shutil.which(binary)
    if exe is None:
        raise error(
            f"{prefix}the Railway CLI ({binary!r}) is not on PATH: {INSTALL_HINT}", code=code
        )
    shown = " ".join([binary, *args])
    try:
        p = subprocess.run(
            [exe, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise error(f"{prefix}`{shown}` did not finish within {timeout:.0f} s", code=code) from None
    except OSError as e:
        raise error(f"{prefix}`{shown}` could not run: {e.strerror}", code=code) from None
    if p.returncode != 0:
        # stderr of `variable` commands never echoes values; stdout of `list` would.
        last = (p.stderr.strip().splitlines() or ["no error output"])[-1]
        raise error(
            f"{prefix}`{shown}` failed (exit {p.returncode}): {redact(last)[:200]}", code=code
        )
    return p.stdout


def scope(service: str, environment: str | None) -> list[str]:
    """`--service S [--environment E]`: which service of which environment a command means."""
    return ["--service", service, *(["--environment", environment] if environment else [])]


def set_variable(key: str, scope: list[str]) -> list[str]:
    """Set `key` from stdin (never on the command line), deploying nothing: the caller decides
    when the service restarts with it."""
    return ["variable", "set", key, "--stdin", *scope, "--skip-deploys"]
