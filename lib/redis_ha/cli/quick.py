"""`status` and `health` as plain functions: what cron and monitors run, fast.

No invoke, no rich (unless a person is at the terminal) and no redis-py here: facts are read
with resp.py and judged by view.take, the same look-and-judge as every other task, so the
`redis-ha` command answers these two without loading the task machinery; the tasks in
cli/cluster.py call the same functions. Returns the exit code.
"""

from __future__ import annotations

from redis_ha import health as healthmod
from redis_ha import inventory, ui
from redis_ha import view as viewmod
from redis_ha.errors import InventoryError


def status(inventory_path: str | None = None, as_json: bool = False) -> int:
    """Every node and Sentinel: role, replication, what each Sentinel believes, problems."""
    inv = inventory.load(inventory_path or None)
    v = viewmod.take(inv)
    if as_json:
        ui.print_json(healthmod.status_dict(inv, v.facts, v.health))
    else:
        ui.status_tables(v.facts, v.health)
    return 0


def _unknown(as_json: bool, error: str, check: str | None) -> int:
    """UNKNOWN (exit 3): the tool cannot judge, so it must not say "down" (a false page)."""
    code = healthmod.EXIT_CODES[healthmod.UNKNOWN]
    if as_json:
        ui.print_json({"level": healthmod.UNKNOWN, "error": error, "check": check, "exit": code})
    else:
        line = f"UNKNOWN  cannot judge: {error}" + (f"; check {check}" if check else "")
        print(line, flush=True)
    return code


def health(
    inventory_path: str | None = None, as_json: bool = False, prometheus: str | None = None
) -> int:
    """The verdict; 0 healthy, 1 degraded, 2 down, 3 unknown (and the metrics to `prometheus`)."""
    try:
        inv = inventory.load(inventory_path or None)
    except InventoryError as e:
        return _unknown(as_json, str(e), None)
    v = viewmod.take(inv, detail=False)
    facts, h = v.facts, v.health
    if prometheus:
        from redis_ha import metrics  # prometheus_client only when asked for

        metrics.write_textfile(prometheus, metrics.samples(inv, facts, h))
    if h.level == healthmod.UNKNOWN:
        return _unknown(as_json, h.problems[0], inv.credential_source())
    if as_json:
        ui.print_json(h.to_dict())
    else:
        ui.verdict(h, facts.elapsed_ms)
    return h.exit_code


COMMANDS = {"status": status, "health": health}


def fast_args(argv: list[str]) -> tuple[str, str | None, bool] | None:
    """(command, inventory, json) when `argv` is a plain `status`/`health` call this module can
    answer alone; None for anything else (help, core flags, --prometheus, other tasks): invoke
    parses those."""
    if not argv or argv[0] not in COMMANDS:
        return None
    inv, as_json, rest = None, False, argv[1:]
    while rest:
        a = rest.pop(0)
        if a in ("--json", "-j"):
            as_json = True
        elif a in ("--inventory", "-i") and rest and not rest[0].startswith("-"):
            inv = rest.pop(0)
        elif a.startswith("--inventory=") and len(a) > len("--inventory="):
            inv = a.split("=", 1)[1]
        else:
            return None
    return argv[0], inv, as_json
