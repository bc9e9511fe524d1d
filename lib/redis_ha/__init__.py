"""redis-ha-runbooks: executable runbooks for a Redis Sentinel high-availability cluster."""

__version__ = "0.1.0"
