"""What every task shares: loading the inventory and turning expected errors into one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from invoke.exceptions import Exit

from redis_ha import inventory
from redis_ha.errors import HAError

F = TypeVar("F", bound=Callable[..., Any])

INVENTORY_HELP = "inventory file (default: $REDIS_HA_INVENTORY or inventories/lab.yaml)"


def load_inventory(path: str | None) -> inventory.Inventory:
    return inventory.load(path or None)


def expected_errors(fn: F) -> F:
    """Expected failures end with one readable line and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HAError as e:
            raise Exit(f"error: {e}", code=e.code) from None
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            raise Exit("interrupted by the operator", code=130) from None

    return wrapper  # type: ignore[return-value]
