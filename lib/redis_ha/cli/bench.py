"""Benchmarks (`invoke bench.*`): each on a lab of its own, results in bench/results/*.json.

Results go to `bench/results/` under the home folder ($REDIS_HA_HOME, else the current one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Collection, task

from redis_ha import ui
from redis_ha.cli.common import SERVER_HELP, expected_errors
from redis_ha.errors import HAError

if TYPE_CHECKING:
    from rich.table import Table

OUT_HELP = "folder for the result JSON (default: bench/results in $REDIS_HA_HOME or here)"


def _out_dir(out: str | None) -> Path:
    from redis_ha import paths

    return Path(out) if out else paths.home() / "bench" / "results"


def _fmt(stat: dict[str, Any], unit: str = "", digits: int = 2) -> str:
    med, mx = stat.get("median"), stat.get("max")
    if med is None:
        return "-"

    def f(x: Any) -> str:
        return f"{x:.{digits}f}" if isinstance(x, float) and not float(x).is_integer() else f"{x:g}"

    return f"{f(med)}{unit} / {f(mx)}{unit}"


def failover_table(result: dict[str, Any]) -> Table:
    """The bench.failover summary: median / max per scenario and client."""
    from rich.table import Table

    t = Table(
        title=(
            f"Failover benchmark on {result['machine'].get('server') or 'redis'}: "
            f"{result['runs']} run(s), {result['rate_per_client']:g} ops/s "
            f"per client, down-after {result['settings']['down_after_ms']} ms  (median / max)"
        ),
        title_justify="left",
    )
    for col in (
        "event",
        "client",
        "lost acked writes",
        "longest write stall",
        "failed requests",
        "all Sentinels agree",
        "hit rate after",
    ):
        t.add_column(col, justify="left" if col in ("event", "client") else "right")
    for r in result["summary"]:
        hit = r["hit_rate_after"]
        hit_s = (
            "-"
            if hit["min"] is None
            else f"{hit['median'] * 100:.1f}% (min {hit['min'] * 100:.1f}%)"
        )
        t.add_row(
            r["label"],
            r["client"],
            _fmt(r["lost_writes"]),
            _fmt(r["stall_s"], " s"),
            _fmt(r["failed"]),
            _fmt(r["agree_s"], " s"),
            hit_s,
        )
    return t


def _footer(result: dict[str, Any]) -> None:
    """What the figures were measured on, how long it took, where the JSON went."""
    m = result["machine"]
    ui.console.print(
        f"{m['cpus']} CPU(s), load {m['loadavg_at_start']} at start, "
        f"{m.get('server') or 'Redis ' + str(m.get('redis'))}, "
        f"redis-py {m['redis_py']}; took {result['duration_s']:.0f} s; wrote {result.get('path')}"
    )


@task(
    help={
        "runs": "repetitions of each scenario (default 5)",
        "rate": "ops/s of each simulated client (default 1000)",
        "scenario": "only this scenario: sentinel-failover, sentinel-coordinated, "
        "failover-manual, crash, or switch-only (the switch without the runner) (repeatable; "
        "default all but switch-only, coordinated where it exists)",
        "client": "only this client: naive, recommended (redis-py) or ioredis (Node) "
        "(repeatable; default every one that can run here)",
        "out": OUT_HELP,
        "server": SERVER_HELP,
    },
    iterable=["scenario", "client"],
)
@expected_errors
def failover(c, runs=5, rate=1000, scenario=None, client=None, out=None, server=None):
    """Plain SENTINEL FAILOVER vs failover.manual vs a killed primary, under app traffic."""
    from redis_ha.bench import failover as fb

    chosen = tuple(scenario) if scenario else fb.SCENARIOS
    known = (*fb.SCENARIOS, fb.COORDINATED, *fb.OPTIONAL)
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise HAError(f"unknown scenario {unknown[0]!r} (choose: {', '.join(known)})")
    clients = tuple(client) if client else None
    bad = [x for x in clients or () if x not in fb.CLIENTS]
    if bad:
        raise HAError(f"unknown client {bad[0]!r} (choose: {', '.join(fb.CLIENTS)})")
    if clients and "ioredis" in clients:
        from redis_ha.lab import node_traffic

        if why := node_traffic.available():
            raise HAError(f"the ioredis client cannot run: {why}")
    if int(runs) < 1:
        raise HAError("--runs must be at least 1")
    result = fb.run_bench(
        runs=int(runs),
        rate=float(rate),
        scenarios=chosen,
        clients=clients,
        out_dir=_out_dir(out),
        log=lambda m: ui.console.print(m, soft_wrap=True),
        server=server,
    )
    ui.console.print(failover_table(result))
    _footer(result)


def rebuild_table(result: dict[str, Any]) -> Table:
    """The bench.rebuild summary: one row per size and run."""
    from rich.table import Table

    t = Table(
        title="Replica rebuild vs Redis's own full sync (floor); target: floor x 1.10 + 2 s",
        title_justify="left",
    )
    for col in ("size", "keys", "floor", "rebuild to in-sync", "whole procedure", "overhead"):
        t.add_column(col, justify="right")
    for r in result["rows"]:
        sync = r["rebuild_to_in_sync_s"]
        ok = "[green]ok[/]" if r["to_in_sync_within_target"] else "[red]over[/]"
        t.add_row(
            f"{r['size_gb']:g} GB",
            str(r["keys"]),
            f"{r['floor_s']:.2f} s",
            "-" if sync is None else f"{sync:.2f} s",
            f"{r['rebuild_total_s']:.2f} s",
            "-"
            if r["overhead_to_in_sync_s"] is None
            else f"{r['overhead_to_in_sync_s']:+.2f} s {ok}",
        )
    return t


@task(
    help={
        "sizes": "dataset sizes in GB, comma-separated (default 0.1,0.5,1)",
        "runs": "repetitions per size (default 1)",
        "out": OUT_HELP,
    }
)
@expected_errors
def rebuild(c, sizes="0.1,0.5,1", runs=1, out=None):
    """Time replica.rebuild against Redis's own full-sync time for 0.1, 0.5 and 1 GB of data."""
    from redis_ha.bench import rebuild as rb

    if int(runs) < 1:
        raise HAError("--runs must be at least 1")
    result = rb.run_bench(
        rb.parse_sizes(sizes),
        runs=int(runs),
        out_dir=_out_dir(out),
        log=lambda m: ui.console.print(m, soft_wrap=True),
    )
    ui.console.print(rebuild_table(result))
    _footer(result)


def cli_table(result: dict[str, Any]) -> Table:
    """The bench.cli summary: one row per command, whole-process seconds."""
    from rich.table import Table

    t = Table(
        title=f"Whole-process time, {result['runs']} interleaved run(s); target 0.15 s",
        title_justify="left",
    )
    for col in ("command", "median", "min", "max"):
        t.add_column(col, justify="left" if col == "command" else "right")
    for r in result["rows"]:
        t.add_row(
            r["command"], f"{r['median_s']:.3f} s", f"{r['min_s']:.3f} s", f"{r['max_s']:.3f} s"
        )
    return t


@task(help={"runs": "rounds (one of each command per round; default 15)", "out": OUT_HELP})
@expected_errors
def cli(c, runs=15, out=None):
    """Time status --json and health as whole processes beside the redis-cli calls they replace."""
    from redis_ha.bench import cli as cb

    if int(runs) < 1:
        raise HAError("--runs must be at least 1")
    result = cb.run_bench(
        runs=int(runs), out_dir=_out_dir(out), log=lambda m: ui.console.print(m, soft_wrap=True)
    )
    ui.console.print(cli_table(result))
    _footer(result)


bench = Collection("bench", failover, rebuild, cli)
