"""Benchmarks that measure the procedures under simulated app traffic on a lab of their own."""

from __future__ import annotations

import os
import platform
from typing import Any

import redis


def machine() -> dict[str, Any]:
    """What a result was measured on: figures mean little without it."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "loadavg_at_start": [round(x, 2) for x in load],
    }
