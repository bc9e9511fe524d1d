"""redis-ha-runbooks tasks: `invoke --list` shows them all; thin bodies over lib/redis_ha."""

from invoke import Collection

from redis_ha.cli import cluster, drill, lab

ns = Collection()
ns.add_task(cluster.status)
ns.add_task(cluster.health)
ns.add_collection(cluster.config)
ns.add_collection(lab.lab)
ns.add_collection(drill.drill)
