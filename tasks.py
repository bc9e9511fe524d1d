"""redis-ha-runbooks tasks: `invoke --list` shows them all; thin bodies over lib/redis_ha."""

from invoke import Collection

from redis_ha.cli import cluster, drill, lab
from redis_ha.cli import labtools as labtools_cli

ns = Collection()
ns.add_task(cluster.status)
ns.add_task(cluster.health)
ns.add_collection(cluster.config)
lab.lab.add_task(labtools_cli.traffic)
lab.lab.add_task(labtools_cli.fault)
ns.add_collection(lab.lab)
ns.add_collection(drill.drill)

# issue 8: an empty primary restarting before Sentinel notices (drill + start units)
from redis_ha.cli import safe_restart  # noqa: E402

drill.drill.add_task(safe_restart.restart_empty_drill, "restart-empty")
cluster.config.add_task(safe_restart.render_units, "render-units")

# issue 4: planned failover, verification after an automatic one
from redis_ha.cli import failover as failover_cli  # noqa: E402

ns.add_collection(failover_cli.failover)

# issue 7: the 30-minute rollback to the single instance, and its undo
from redis_ha.cli import rollback as rollback_cli  # noqa: E402

ns.add_collection(rollback_cli.rollback)
