"""redis-ha-runbooks tasks: `invoke --list` shows them all (the same as `redis-ha --list`).

The namespace lives in the package (redis_ha.cli.app), so the installed `redis-ha` command and
`invoke` in a checkout serve the same tasks.
"""

from redis_ha.cli.app import ns

__all__ = ["ns"]
