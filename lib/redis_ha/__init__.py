"""redis-ha-runbooks: executable runbooks for a Redis Sentinel high-availability cluster."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`__version__`, read from the installed metadata when first asked for (importlib.metadata
    costs tens of ms at start-up, which `status` and `health` should not pay)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("redis-ha-runbooks")
    except PackageNotFoundError:  # running from a source tree that was never installed
        v = "0+unknown"
    globals()["__version__"] = v
    return v
