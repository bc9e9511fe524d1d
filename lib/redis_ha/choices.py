"""The names some task options accept, in a module that imports nothing.

Task help texts list them when invoke builds its collection, on every command; the code behind
them (drills, faults, split-brain salvage) loads redis-py and the lab, so it is imported only by
the task body that uses it. tests/test_cli_startup.py holds the dicts keyed by these names to
the same names, in the same order.
"""

from __future__ import annotations

# drills.SCENARIOS, in its order (drill.run/drill.start --scenario)
DRILL_SCENARIOS = (
    "replica-crash",
    "replica-diverge",
    "primary-crash",
    "primary-freeze",
    "sentinel-down",
    "two-sentinels-down",
    "split-brain",
    "manual-promotion",
    "all-down",
    "restart-empty",
    "planned-switchover",
    "memory-pressure",
    "config-drift",
)
# lab.faults.KINDS (lab.fault --kind)
FAULT_KINDS = ("crash", "freeze", "resume", "restart-empty", "diverge", "oom", "drift")
# the split-brain forms lab.scenarios injects (drill.splitbrain --scenario)
SPLITBRAIN_SCENARIOS = ("partition", "freeze", "promote", "sentinel")
# how salvage settles a key both primaries wrote (splitbrain.recover --policy)
SALVAGE_POLICIES = ("authoritative-wins", "newest-wins", "stale-only")
DEFAULT_POLICY = "authoritative-wins"

# deploy.py's default image for `config.render --target railway|compose` (its --image help)
DEFAULT_IMAGE = "redis-ha-runbooks:latest"
