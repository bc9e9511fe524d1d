"""An operator changes the app's configuration by hand; the tool says exactly what and waits.

For platforms this tool cannot drive (a PaaS console, a config repo with review). With `--yes`
it refuses: `--yes` answers this tool's own questions, it cannot vouch that a person changed a
setting somewhere else, and carrying on unconfirmed would validate a change nobody made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis_ha.appconfig import AppConfigError, read_backup, write_backup


def _ask(question: str) -> bool:
    try:
        answer = input(f"{question} Type 'done' when finished (anything else aborts): ")
    except EOFError:
        return False
    return answer.strip().lower() == "done"


def instructions(changes: dict[str, str | None]) -> str:
    """The exact edits, one per line."""
    lines = []
    for k, v in changes.items():
        lines.append(f"  remove {k}" if v is None else f"  set    {k}={v}")
    return "\n".join(lines)


class ManualBackend:
    """Print the change, wait for the operator's 'done'."""

    name = "manual"

    def __init__(
        self,
        *,
        yes: bool = False,
        confirm: Callable[[str], bool] | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.yes = yes
        self.confirm = confirm or _ask
        self.out = out

    def where(self) -> str:
        return "the app's configuration (changed by hand)"

    def refuse_unattended(self) -> None:
        if self.yes:
            raise AppConfigError(
                "app.config_backend is 'manual': an operator must make the change, so --yes "
                "cannot be used; run without --yes"
            )

    def read(self) -> dict[str, str] | None:
        return None

    def _do(self, what: str, changes: dict[str, str | None]) -> None:
        self.refuse_unattended()
        self.out(f"{what}: change the app's environment as follows (do not redeploy yet):")
        self.out(instructions(changes))
        if not self.confirm("Have you made exactly these changes?"):
            raise AppConfigError("the operator did not confirm the configuration change")

    def apply(
        self,
        changes: dict[str, str | None],
        backup_dir: Path,
        previous: dict[str, str | None] | None = None,
        key: str | None = None,
    ) -> Path:
        # The previous values cannot be read back from a console we do not drive, so the caller
        # passes the settings of the mode the app is leaving (`previous`) as the backup.
        prev = previous or {}
        old = {k: v for k, v in prev.items() if v is not None}
        absent = [k for k, v in prev.items() if v is None]
        saved = write_backup(backup_dir, "manual", old, absent, key)
        self._do("Configuration change", changes)
        return saved

    def restore(self, backup: Path) -> None:
        changes = read_backup(backup)
        if changes:
            self._do("Put the previous configuration back", changes)

    def redeploy(self) -> str:
        self.refuse_unattended()
        self.out("Redeploy (or restart) the app now so it picks up the new configuration.")
        if not self.confirm("Has the app been redeployed and is it running?"):
            raise AppConfigError("the operator did not confirm the redeploy")
        return "the operator redeployed the app"
