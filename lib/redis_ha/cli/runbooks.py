"""`invoke runbooks.*`: validate, list, show and run the runbook/playbook pairs."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from redis_ha import ui
from redis_ha.cli.common import expected_errors
from redis_ha.cli.names import command
from redis_ha.cli.procedures import RUN_HELP, run_procedure


@task(help={"root": "folder holding runbooks/ and playbooks/ (default: the package's own)"})
def check(c, root=None):
    """Validate every runbook/playbook pair and every diagnosis's leaf; exit 1 on problems."""
    from redis_ha import paths, triage
    from redis_ha import playbook as playbookmod
    from redis_ha.cli import app  # the root namespace imports this module

    base = Path(root) if root else paths.shipped("playbooks").parent
    pbs = playbookmod.discover(base)
    if not pbs:  # a mistyped --root must not pass as "consistent"
        raise Exit(f"runbooks.check: no playbooks in {base / 'playbooks'}", code=1)
    problems: list[object] = [*playbookmod.check_all(base)]
    if root is None:  # the diagnoses lead to the package's own runbooks and tasks
        problems += triage.leaf_problems(base, app.ns.task_names)
    for p in problems:
        print(p)
    if problems:
        raise Exit(f"runbooks.check: {len(problems)} problem(s) in {len(pbs)} playbook(s)", code=1)
    for path in pbs:
        pb, _ = playbookmod.validate(path)
        if pb is not None:
            given = ", ".join(f"--{n.replace('_', '-')}" for n in pb.inputs()) or "none"
            print(f"  {pb.name}: operator inputs {given}")
    print(f"runbooks.check: {len(pbs)} playbook(s) and their runbooks are consistent")
    if root is None:
        n = len(triage.RULES) + len(triage.OTHERWISE)
        print(f"runbooks.check: {n} diagnoses lead to existing runbook steps and tasks")


@task()
@expected_errors
def list_(c):
    """List the procedures: name, title, when to use it, expected duration."""
    from rich.table import Table

    from redis_ha import playbook as playbookmod

    t = Table(title=f"Procedures ({command('runbooks.show NAME')})", title_justify="left")
    t.add_column("name", no_wrap=True)
    for col in ("title", "when to use it", "duration", "steps", "changes"):
        t.add_column(col)
    for p in playbookmod.discover():
        pb, _ = playbookmod.validate(p)
        if pb is None:
            bad = f"[red](invalid: run {command('runbooks.check')})[/]"
            t.add_row(p.stem, bad, "", "", "", "")
            continue
        m = pb.runbook.meta
        t.add_row(
            pb.name,
            pb.title,
            str(m.get("when", "")),
            str(m.get("duration", "")),
            str(len(pb.steps)),
            "yes (locks)" if pb.changes else "no",
        )
    ui.console.print(t)


@task(help={"name": "procedure name (see runbooks.list) or a playbook path"})
@expected_errors
def show(c, name):
    """Render one runbook (rich Markdown), with each step's mechanics from the playbook."""
    from redis_ha import playbook as playbookmod

    path = playbookmod.playbook_path(name)
    if not path.exists():
        playbookmod.load(name)  # raises the readable "no playbook" error
    pb, problems = playbookmod.validate(path)
    if pb is None:
        raise Exit("\n".join(str(p) for p in problems), code=1)
    rb = pb.runbook
    m = rb.meta
    ui.console.rule(f"[bold]{rb.title}[/]", align="left")
    ui.console.print(f"when: {m.get('when')}\nduration: {m.get('duration')}")
    if pb.budget_s:
        ui.console.print(f"time budget: {pb.budget_s:g} s")
    ui.console.print(
        f"changes the cluster: {'yes (takes the cluster lock)' if pb.changes else 'no'}"
    )
    given = ", ".join(f"--{n.replace('_', '-')}" for n in pb.inputs()) or "none"
    ui.console.print(f"operator inputs: {given}")
    if rb.intro:
        ui.markdown(rb.intro)
    for i, s in enumerate(pb.steps, 1):
        r = rb.step(s.id)
        ui.markdown(f"## {i}. {r.title if r else s.id}")
        if r:
            ui.markdown(r.text)
        mech = []
        if s.guard:
            mech.append("guards: " + ", ".join(g.name for g in s.guard))
        if s.action:
            mech.append(f"action: {s.action}" + (" (asks first)" if s.confirm else ""))
        if s.verify:
            mech.append("verifies: " + ", ".join(v.name for v in s.verify))
        if s.undo:
            mech.append(f"undo: {s.undo.name}")
        if mech:
            ui.console.print("[dim]  " + " · ".join(mech) + "[/]")
    for p in problems:
        ui.console.print(f"[red]problem:[/] {p}")


@task(
    help={
        **RUN_HELP,
        "name": "procedure name or playbook path",
        "param": "a procedure parameter as key=value (repeatable)",
    },
    iterable=["param"],
)
def run(
    c, name, inventory=None, dry_run=False, yes=False, resume=None, target_name=None, param=None
):
    """Run any procedure by name or playbook path (procedure tasks are shortcuts for this)."""
    params = {}
    for kv in param or []:
        k, sep, v = kv.partition("=")
        if not sep:
            raise Exit(f"error: --param {kv!r} must be key=value", code=2)
        params[k.strip().replace("-", "_")] = v
    run_procedure(
        name,
        inventory,
        params=params,
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        target_name=target_name,
    )


runbooks = Collection("runbooks")
runbooks.add_task(check)
runbooks.add_task(list_, "list")
runbooks.add_task(show)
runbooks.add_task(run)
