"""The clock an operator sees: each step's time against its expected time, the run against its
budget (the rollback's 30 minutes)."""

from __future__ import annotations


def clock_line(
    step_s: float, expected_s: float | None, total_s: float, budget_s: float | None
) -> str:
    """Per-step and total time, flagged against the step's expected time and the budget."""
    parts = [f"step {mmss(step_s)}"]
    if expected_s and step_s > expected_s:
        parts[0] = f"[yellow]step {mmss(step_s)} ⚠ over the expected {mmss(expected_s)}[/]"
    if budget_s:
        left = budget_s - total_s
        if left < 0:
            parts.append(
                f"[bold red]elapsed {mmss(total_s)} ⚠ OVER the {mmss(budget_s)} budget by "
                f"{mmss(-left)}[/]"
            )
        else:
            parts.append(
                f"elapsed {mmss(total_s)} of the {mmss(budget_s)} budget, {mmss(left)} left"
            )
    else:
        parts.append(f"total {mmss(total_s)}")
    return "  ⏱ " + " · ".join(parts)


def mmss(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0.0, s)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    return f"{m}:{sec:02d}"
