"""Benchmarks that measure the procedures under simulated app traffic on a lab of their own."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path
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


def save(result: dict[str, Any], started: datetime, out_dir: Path | None) -> dict[str, Any]:
    """Write `result` to out_dir/<bench>-<UTC start>.json (unless out_dir is None); add its path."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{result['bench']}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        result["path"] = str(path)
    return result
