"""The procedure state: every value one step records for a later one, with its type.

Steps record state through their plan (`Plan.record`) or their apply; the journal writes it with
every step, so `--resume` restores it. A playbook reads it as `$name`; a `$name` that is not a
state key is an operator input (`--name` on the task), which is how `runbooks.check` tells the
two apart. Keys are declared once, here, so two steps cannot use two names for one value.
"""

from __future__ import annotations

from typing import Any, TypedDict, get_type_hints


class RunState(TypedDict, total=False):
    # failover
    old_primary: str
    new_primary: str
    priority_restore: dict[str, int]  # node -> the replica-priority to put back
    writes_paused_on: str
    pause_expires_at: float
    failover: dict[str, Any]  # the last failover's nodes and durations (failover.timeline)
    switch: dict[str, Any]  # what failover.switch did and how long each part took
    # node settings
    config_before: dict[str, str]  # "node:parameter" -> the value node.set_config replaced
    converged: list[str]  # nodes config.converge changes: CONFIG REWRITE them (a resume too)
    # split-brain
    authoritative: str
    stale: list[str]
    fenced: list[str]
    fence_ms: int
    salvaged: list[str]
    exports: dict[str, str]  # node -> the file its salvaged keys were exported to
    # rollback
    rollback_to: str
    operator: str
    sentinel_primary_before: str | None
    warm_copied: int
    app_backup: str
    app_restored: bool
    sentinel_after: str
    report: str


def keys() -> dict[str, Any]:
    """Every state key and its type."""
    return get_type_hints(RunState)


def is_state(name: str) -> bool:
    """True when `$name` in a playbook names procedure state (else it is an operator input)."""
    return name in keys()


def merge(state: RunState, record: dict[str, Any]) -> None:
    """Add a step's record to the state. A dict is a set of values to put back (the settings a
    step replaced): entries already there win, so a retried step never overwrites the value
    that was there before the run with its own."""
    for k, v in record.items():
        old = state.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            v = {**v, **old}
        state[k] = v  # type: ignore[literal-required]


def unknown(record: dict[str, Any]) -> list[str]:
    """Keys a step tried to record that are not declared above (a bug in that step)."""
    known = keys()
    return sorted(k for k in record if k not in known)
