"""The one place that talks to the terminal: rich output and questionary prompts.

rich is imported on first use (`console` is made when first asked for): `status --json` and
`health`, run by cron and monitors, should not pay for it.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from redis_ha.servers import label

if TYPE_CHECKING:
    from rich.console import Console

    from redis_ha.facts import ClusterFacts
    from redis_ha.health import Health

    console: Console
    err_console: Console


def __getattr__(name: str) -> Any:
    """`console` and `err_console`, made (and rich imported) when first used."""
    if name not in ("console", "err_console"):
        raise AttributeError(name)
    from rich.console import Console

    made = Console(stderr=name == "err_console", highlight=False)
    globals()[name] = made
    return made


def _get(name: str) -> Console:
    """This module's own way to the lazily made consoles (a global name skips __getattr__)."""
    made: Console = globals().get(name) or __getattr__(name)
    return made


LEVEL_STYLE = {
    "healthy": "bold green",
    "degraded": "bold yellow",
    "down": "bold red",
    "unknown": "bold magenta",
}


def print_json(obj: Any) -> None:
    """Exactly one JSON object on stdout, nothing else (for scripts)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def markdown(text: str) -> None:
    from rich.markdown import Markdown

    _get("console").print(Markdown(text))


def _yn(v: bool | None) -> str:
    return "-" if v is None else ("[green]up[/]" if v else "[red]down[/]")


def status_tables(facts: ClusterFacts, health: Health) -> None:
    """The `invoke status` screen: nodes, Sentinels, verdict and problems.

    Addresses are dropped on narrow terminals: names are what the runbooks use.
    """
    wide = _get("console").width >= 110
    from rich import box
    from rich.table import Table

    t = Table(title=f"Redis nodes ({facts.master_name})", title_justify="left", box=box.SIMPLE)
    cols = ["node", *(["address"] if wide else []), "state", "role", "replicates from", "link"]
    for col in (*cols, "offset", "behind"):
        t.add_column(col, overflow="fold")
    t.add_column("keys", justify="right")
    t.add_column("server")
    for n in facts.nodes:
        role = {"master": "primary", None: "-"}.get(n.role, n.role or "-")
        if n.role == "master" and n.name != health.primary:
            role = "[red]primary?[/]"  # claims to be primary, Sentinels disagree
        elif n.name == health.primary:
            role = "[bold]primary[/]"
        behind = "-" if n.lag_bytes is None else f"{n.lag_bytes} B"
        t.add_row(
            n.name,
            *([n.address] if wide else []),
            "[green]up[/]" if n.up else f"[red]down[/] {n.error or ''}",
            role,
            n.replicating_from or "-",
            _yn(n.link_up),
            "-" if n.offset is None else str(n.offset),
            behind,
            "-" if n.keys is None else str(n.keys),
            label(n.server, n.version),
        )
    _get("console").print(t)
    st = Table(title="Sentinels", title_justify="left", box=box.SIMPLE)
    scols = ["sentinel", *(["address"] if wide else []), "state", "believes primary is"]
    for col in (*scols, "epoch", "flags", "quorum", "server"):
        st.add_column(col, overflow="fold")
    for s in facts.sentinels:
        believes = "-"
        if s.primary:
            named = s.primary_name != s.primary
            believes = f"{s.primary_name} ({s.primary})" if named and wide else str(s.primary_name)
        st.add_row(
            s.name,
            *([s.address] if wide else []),
            "[green]up[/]" if s.up else f"[red]down[/] {s.error or ''}",
            believes,
            "-" if s.config_epoch is None else str(s.config_epoch),
            ",".join(f for f in s.flags if f and f != "master") or "-",
            "-" if s.quorum_ok is None else ("[green]OK[/]" if s.quorum_ok else "[red]NO[/]"),
            label(s.server, s.version),
        )
    _get("console").print(st)
    verdict(health, facts.elapsed_ms)


def verdict(health: Health, elapsed_ms: int | None = None) -> None:
    """The `health` lines: in colour (rich) at a terminal; plain, unwrapped text for cron, a
    monitor or a pipe, which then pays neither for importing rich nor for its line wrapping."""
    took = f"  (facts in {elapsed_ms} ms)" if elapsed_ms is not None else ""
    rest = (
        f"  primary: {health.primary or 'none'}  "
        f"quorum: {'OK' if health.quorum_ok else 'NO'}  "
        f"split-brain: {'YES' if health.split_brain else 'no'}{took}"
    )
    if not sys.stdout.isatty():
        lines = [health.level.upper() + rest, *(f"  ! {p}" for p in health.problems)]
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        return
    style = LEVEL_STYLE[health.level]
    _get("console").print(f"[{style}]{health.level.upper()}[/]{rest}")
    for p in health.problems:
        _get("console").print(f"  [yellow]![/] {p}")


# --- procedure runner: step rendering and prompts ---------------------------------------------

STEP_CHOICES = {
    "yes": ("y", "yes: run this step"),
    "no": ("n", "no: stop here (and offer to undo what was done)"),
    "skip": ("s", "skip this step"),
    "quit": ("q", "quit now (the run can be resumed with --resume)"),
}


def interactive() -> bool:
    """True when a person can answer prompts (stdin and stdout are a terminal)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def step_header(index: int, total: int, title: str, step_id: str) -> None:
    _get("console").rule(
        f"[bold]Step {index}/{total}: {title}[/]  [dim]{{#{step_id}}}[/]", align="left"
    )


def check_line(kind: str, ok: bool, name: str, message: str) -> None:
    mark = "[green]✓[/]" if ok else "[red]✗[/]"
    _get("console").print(f"  {mark} {kind} {name}: {message}", soft_wrap=True)


def ask_step(question: str, *, skippable: bool, default_no: bool) -> str:
    """yes / no / skip / quit, by key (y, n, s, q) or arrows; Ctrl-C raises KeyboardInterrupt."""
    import questionary

    names = ["yes", "no", *(["skip"] if skippable else []), "quit"]
    choices = [
        questionary.Choice(STEP_CHOICES[n][1], value=n, shortcut_key=STEP_CHOICES[n][0])
        for n in names
    ]
    default = next(c for c in choices if c.value == ("no" if default_no else "yes"))
    answer = questionary.select(
        question, choices=choices, default=default, use_shortcuts=True, use_jk_keys=False
    ).unsafe_ask()
    return str(answer)


def ask_yes_no(question: str, *, default: bool) -> bool:
    import questionary

    return bool(questionary.confirm(question, default=default).unsafe_ask())


def ask_text(question: str) -> str:
    """A typed answer (a cluster's name): Ctrl-C raises KeyboardInterrupt."""
    import questionary

    return str(questionary.text(question).unsafe_ask() or "")
