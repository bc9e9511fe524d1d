"""`status` and `health`: what the cluster looks like now (read-only, root tasks).

The bodies are cli/quick.py's, which the `redis-ha` command also runs without invoke.
"""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from redis_ha.cli import quick
from redis_ha.cli.common import INVENTORY_HELP, expected_errors


@task(help={"inventory": INVENTORY_HELP, "json": "print one JSON object instead of tables"})
@expected_errors
def status(c, inventory=None, json=False):
    """Show every node and Sentinel: role, replication, what each Sentinel believes, problems."""
    quick.status(inventory, json)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "json": "print the verdict as JSON",
        "prometheus": "also write the metrics to FILE (node_exporter textfile collector)",
    }
)
@expected_errors
def health(c, inventory=None, json=False, prometheus=None):
    """Print the verdict; exit 0 healthy, 1 degraded, 2 down, 3 unknown (cron and alerting)."""
    code = quick.health(inventory, json, prometheus)
    if code:
        raise Exit(code=code)
