"""redis-ha-runbooks: executable runbooks for a Redis Sentinel high-availability cluster."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("redis-ha-runbooks")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
