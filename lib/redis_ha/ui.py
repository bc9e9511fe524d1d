"""The one place that talks to the terminal: rich output and questionary prompts."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from redis_ha.facts import ClusterFacts
from redis_ha.health import Health

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

LEVEL_STYLE = {"healthy": "bold green", "degraded": "bold yellow", "down": "bold red"}


def print_json(obj: Any) -> None:
    """Exactly one JSON object on stdout, nothing else (for scripts)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def markdown(text: str) -> None:
    console.print(Markdown(text))


def _yn(v: bool | None) -> str:
    return "-" if v is None else ("[green]up[/]" if v else "[red]down[/]")


def status_tables(facts: ClusterFacts, health: Health) -> None:
    """The `invoke status` screen: nodes, Sentinels, verdict and problems."""
    t = Table(title=f"Redis nodes ({facts.master_name})", title_justify="left")
    for col in ("node", "address", "state", "role", "replicates from", "link", "offset", "lag"):
        t.add_column(col)
    t.add_column("keys", justify="right")
    for n in facts.nodes:
        role = n.role or "-"
        if n.name == health.primary:
            role = f"[bold]{role} (primary)[/]"
        lag = "-"
        if n.lag_bytes is not None:
            lag = f"{n.lag_bytes} B / {n.lag_ms or 0} ms"
        t.add_row(
            n.name,
            n.address,
            "[green]up[/]" if n.up else f"[red]down[/] {n.error or ''}",
            role,
            n.replicating_from or "-",
            _yn(n.link_up),
            "-" if n.offset is None else str(n.offset),
            lag,
            "-" if n.keys is None else str(n.keys),
        )
    console.print(t)
    st = Table(title="Sentinels", title_justify="left")
    for col in ("sentinel", "address", "state", "believes primary is", "epoch", "flags", "quorum"):
        st.add_column(col)
    for s in facts.sentinels:
        believes = "-"
        if s.primary:
            named = s.primary_name != s.primary
            believes = f"{s.primary_name} ({s.primary})" if named else s.primary
        st.add_row(
            s.name,
            s.address,
            "[green]up[/]" if s.up else f"[red]down[/] {s.error or ''}",
            believes,
            "-" if s.config_epoch is None else str(s.config_epoch),
            ",".join(f for f in s.flags if f) or "-",
            "-" if s.quorum_ok is None else ("[green]OK[/]" if s.quorum_ok else "[red]NO[/]"),
        )
    console.print(st)
    verdict(health, facts.elapsed_ms)


def verdict(health: Health, elapsed_ms: int | None = None) -> None:
    style = LEVEL_STYLE[health.level]
    took = f"  (facts in {elapsed_ms} ms)" if elapsed_ms is not None else ""
    console.print(
        f"[{style}]{health.level.upper()}[/]  primary: {health.primary or 'none'}  "
        f"quorum: {'OK' if health.quorum_ok else 'NO'}  "
        f"split-brain: {'YES' if health.split_brain else 'no'}{took}"
    )
    for p in health.problems:
        console.print(f"  [yellow]![/] {p}")
