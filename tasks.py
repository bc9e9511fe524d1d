"""redis-ha-runbooks tasks: `invoke --list` shows them all; thin bodies over lib/redis_ha."""

from invoke import Collection

from redis_ha.cli import check, cluster, drill, lab
from redis_ha.cli import journal as journal_cli
from redis_ha.cli import labtools as labtools_cli
from redis_ha.cli import runbooks as runbooks_cli
from redis_ha.cli.common import friendly_parse_errors

friendly_parse_errors()
ns = Collection()
ns.add_task(cluster.status)
ns.add_task(cluster.health)
ns.add_collection(cluster.config)
lab.lab.add_task(labtools_cli.traffic)
lab.lab.add_task(labtools_cli.fault)
ns.add_collection(lab.lab)
ns.add_collection(drill.drill)
ns.add_task(check.check)
ns.add_collection(runbooks_cli.runbooks)
ns.add_collection(journal_cli.journal)

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

# issue 5: replica rebuild
from redis_ha.cli import replica as replica_cli  # noqa: E402

ns.add_collection(replica_cli.replica)

# issue 4: failover benchmark (other benchmarks add tasks to bench_cli.bench)
from redis_ha.cli import bench as bench_cli  # noqa: E402

ns.add_collection(bench_cli.bench)

# issue 6: split-brain detection and recovery; lab partitions; split-brain drills
from redis_ha.cli import splitbrain as splitbrain_cli  # noqa: E402

ns.add_collection(splitbrain_cli.splitbrain)
lab.lab.add_task(splitbrain_cli.partition)
lab.lab.add_task(splitbrain_cli.heal)
drill.drill.add_task(splitbrain_cli.drill_splitbrain, "splitbrain")

# issue 4: the README demo (switchover + crash under traffic)
from redis_ha.cli import demo as demo_cli  # noqa: E402

ns.add_task(demo_cli.demo)

# guided incident response (triage -> runbook)
from redis_ha.cli import incident as incident_cli  # noqa: E402

ns.add_task(incident_cli.incident)

# issue 13: monitoring (watch, Prometheus exporter, capacity, cost)
from redis_ha.cli import monitor as monitor_cli  # noqa: E402

ns.add_task(monitor_cli.watch)
ns.add_task(monitor_cli.capacity)
ns.add_task(monitor_cli.cost)
ns.add_collection(monitor_cli.metrics)
