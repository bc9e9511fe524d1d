"""Ask each node and Sentinel, before a run changes anything, whether our ACL user may send the
commands the plans will send (`ACL DRYRUN`, Redis 7.0): a missing permission is one line up
front, never a NOPERM half-way through a step.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import redis

from redis_ha.conn import client
from redis_ha.inventory import Inventory
from redis_ha.plan import Plan


def needed(plans: Iterable[Plan]) -> dict[str, list[list[str]]]:
    """Every distinct command the plans send, by target endpoint name."""
    out: dict[str, list[list[str]]] = {}
    for plan in plans:
        for op in plan.ops:
            for argv in op.argv:
                cmds = out.setdefault(op.target, [])
                if argv not in cmds:
                    cmds.append(argv)
    return out


def refusals(inv: Inventory, commands: dict[str, list[list[str]]]) -> tuple[list[str], list[str]]:
    """(what the user may not run, one line each; endpoints where nobody could tell)."""
    user = inv.auth.username or "default"

    def one(target: str) -> tuple[list[str], list[str]]:
        ep = inv.find(target)
        if ep is None:
            return [], []
        c = client(inv, ep, timeout=2.0)
        bad: list[str] = []
        try:
            for argv in commands[target]:
                answer = c.execute_command("ACL", "DRYRUN", user, *argv)
                if str(answer) != "OK":
                    bad.append(f"{target}: {' '.join(argv[:2])}: {answer}")
        except redis.ResponseError as e:  # no ACL DRYRUN (Redis < 7), or not allowed to ask
            return bad, [f"{target}: {str(e).splitlines()[0]}"]
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return bad, []  # an unreachable endpoint is the guards' business
        finally:
            c.close()
        return bad, []

    with ThreadPoolExecutor(max_workers=max(1, len(commands))) as pool:
        results = list(pool.map(one, sorted(commands)))
    return [b for r in results for b in r[0]], [u for r in results for u in r[1]]


def refusal_line(inv: Inventory, bad: list[str]) -> str:
    """The one line a refused run prints: the user, the first missing permission, how many more."""
    user = inv.auth.username or "default"
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return (
        f"the ACL user {user!r} lacks a permission this procedure needs: {bad[0]}{more}; "
        "nothing was changed (run it as the procedure operator, see docs/ACL.md)"
    )
