"""`invoke journal.*`: what happened in past runs, as a Markdown timeline for a postmortem."""

from __future__ import annotations

from invoke import Collection, task

from redis_ha import ui
from redis_ha.cli.common import expected_errors


@task(help={"run": "run id or unique part of it (default: the latest run)"})
@expected_errors
def show(c, run=None):
    """Print one run's journal as a Markdown timeline (default: the latest run)."""
    from redis_ha import journal as journalmod

    path = journalmod.find(run)
    print(journalmod.to_markdown(journalmod.read(path), path.stem), end="")


@task()
@expected_errors
def list_(c):
    """List recorded runs: id, procedure, operator, result."""
    from rich.table import Table

    from redis_ha import journal as journalmod

    runs = journalmod.runs()
    if not runs:
        ui.console.print(f"no runs recorded in {journalmod.journal_dir()}")
        return
    t = Table(title=f"Runs in {journalmod.journal_dir()}", title_justify="left")
    for col in ("run", "procedure", "operator", "started", "result"):
        t.add_column(col)
    for p in runs:
        s = journalmod.summary(journalmod.read(p))
        started = journalmod.utc(s["started"]) if s["started"] else "-"
        result = s["result"] + (" (dry run)" if s["dry_run"] else "")
        t.add_row(p.stem, str(s["procedure"]), f"{s['who']}@{s['host']}", started, result)
    ui.console.print(t)


journal = Collection("journal")
journal.add_task(show)
journal.add_task(list_, "list")
