"""What every task shares: loading the inventory and turning expected errors into one line."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from redis_ha.errors import HAError

if TYPE_CHECKING:
    from redis_ha.inventory import Inventory

F = TypeVar("F", bound=Callable[..., Any])

INVENTORY_HELP = (
    "inventory file (default: $REDIS_HA_INVENTORY, else inventories/lab.yaml here, else the lab "
    "inventory shipped with the package)"
)
# lab.up and the benchmarks: the choice lab/binaries.py resolves
SERVER_HELP = (
    "redis, valkey, or a folder of server binaries (default: $REDIS_HA_SERVER_BIN, "
    "$REDIS_HA_SERVER, the inventory's lab_server, else redis)"
)


def load_inventory(path: str | None) -> Inventory:
    from redis_ha import inventory  # here: building the task collection loads no inventory code

    return inventory.load(path or None)


def expected_errors(fn: F) -> F:
    """Expected failures end with one readable line and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from invoke.exceptions import Exit

        try:
            return fn(*args, **kwargs)
        except HAError as e:
            raise Exit(f"error: {e}", code=e.code) from None
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            raise Exit("interrupted by the operator", code=130) from None

    return wrapper  # type: ignore[return-value]


def plain_errors(fn: Callable[..., int], *args: Any) -> int:
    """`expected_errors` without invoke (the `redis-ha` fast path): the same line on stderr and
    the same exit code, returned instead of raised."""
    try:
        return fn(*args)
    except HAError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("\ninterrupted\ninterrupted by the operator", file=sys.stderr)
        return 130


@contextmanager
def stop_on_signals(event: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM end the run cleanly (with a report); a second Ctrl-C gives up at once."""

    def handler(signum: int, frame: Any) -> None:
        if event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        event.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def friendly_parse_errors() -> None:
    """Make invoke report a badly typed option in one line instead of a traceback.

    invoke casts `--runs x` with int() while parsing, before any task body runs, and lets the
    ValueError escape. Turning it into invoke's own ParseError gives the same one-line message
    and exit code 1 as an unknown option, for every task at once.
    """
    from invoke.exceptions import ParseError
    from invoke.parser.argument import Argument

    original = Argument.set_value
    if getattr(original, "_friendly", False):
        return

    def set_value(self: Argument, value: Any, cast: bool = True) -> None:
        try:
            original(self, value, cast=cast)
        except ValueError:
            kind = getattr(self.kind, "__name__", str(self.kind))
            name = str(self.name).replace("_", "-")
            article = "an" if kind[:1] in "aeiou" else "a"
            raise ParseError(f"--{name} must be {article} {kind}, got {value!r}") from None

    set_value._friendly = True  # type: ignore[attr-defined]
    Argument.set_value = set_value  # type: ignore[method-assign]
