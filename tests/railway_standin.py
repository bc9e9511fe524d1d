"""A stand-in for the Railway CLI 4.61 that runs each "service" as a real local redis-server.

Installed as `railway` on PATH (`install`), it answers the commands the railway backend and the
app-config backend use, in the CLI's argument and JSON forms, records every call (argv, stdin,
whether a token was in its environment) in `calls.jsonl`, and keeps the services' variables in
`vars.json`. A deploy starts the service's process like Railway runs our start command: through
redis_ha.safestart, with the service's variables in its environment (REDIS_HA_ARGS,
REDIS_HA_BOOTSTRAP), daemonized with the lab's config, pid file and log. `fail-<command>` in
its folder makes that command fail, with the token in its error text (a leaky CLI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VERSION = "railway 4.61.0"
ENV_DIR = "RAILWAY_STANDIN_DIR"


def install(bin_dir: Path, services: dict[str, dict[str, Any]]) -> Path:
    """Put `railway` into `bin_dir` for `services` {name: {dir, inventory, node, environment,
    log}}; returns the state folder (also bin_dir)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "railway"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "$@"\n')
    exe.chmod(0o755)
    (bin_dir / "services.json").write_text(json.dumps(services))
    (bin_dir / "vars.json").write_text(json.dumps({s: {} for s in services}))
    (bin_dir / "deployed.json").write_text(json.dumps({s: {} for s in services}))
    return bin_dir


def calls(state: Path) -> list[dict[str, Any]]:
    p = state / "calls.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _pid(svc: dict[str, Any]) -> int | None:
    try:
        pid = int(Path(svc["dir"], "pid").read_text())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, ValueError):
        return None
    return None if state in ("Z", "X") else pid


def _stop(svc: dict[str, Any]) -> None:
    pid = _pid(svc)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    while _pid(svc) is not None:
        time.sleep(0.02)


def _deploy(svc: dict[str, Any], variables: dict[str, str]) -> None:
    _stop(svc)
    d = svc["dir"]
    argv = [sys.executable, "-m", "redis_ha.safestart", "--inventory", svc["inventory"]]
    argv += ["--node", svc["node"], "--", "redis-server", "redis.conf", "--daemonize", "yes"]
    argv += ["--pidfile", f"{d}/pid"]
    env = {**os.environ, **variables}
    with open(Path(d, "stdout.log"), "ab") as out:
        subprocess.run(argv, cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def main(args: list[str]) -> int:
    here = Path(os.environ[ENV_DIR])
    stdin = None if "--stdin" not in args else sys.stdin.read()
    token = any(os.environ.get(v) for v in ("RAILWAY_TOKEN", "RAILWAY_API_TOKEN"))
    with open(here / "calls.jsonl", "a") as f:
        f.write(json.dumps({"argv": args, "stdin": stdin, "token": token}) + "\n")
    if args == ["--version"]:
        print(VERSION)
        return 0
    if not token:
        print("Unauthorized. Please login with `railway login`", file=sys.stderr)
        return 1
    command = "variable " + args[1] if args[0] == "variable" else " ".join(args[:2])
    command = args[0] if args[0] in ("down", "redeploy", "restart", "logs") else command
    if (here / f"fail-{command.replace(' ', '-')}").exists():
        leak = os.environ.get("RAILWAY_TOKEN") or os.environ.get("RAILWAY_API_TOKEN")
        print(f"Error: backboard answered 500 (token {leak})", file=sys.stderr)
        return 1
    services = json.loads((here / "services.json").read_text())
    variables = json.loads((here / "vars.json").read_text())
    deployed = json.loads((here / "deployed.json").read_text())
    name = _flag(args, "--service")
    if name not in services:
        print(f"Service '{name}' not found", file=sys.stderr)
        return 1
    svc = services[name]
    env = _flag(args, "--environment")
    if env is not None and env != svc["environment"]:
        print(f"Environment '{env}' not found", file=sys.stderr)
        return 1
    if command == "service status":
        assert "--json" in args
        running = _pid(svc) is not None
        status = "SUCCESS" if running else "REMOVED"
        print(json.dumps({"id": f"id-{name}", "name": name, "status": status, "stopped": False}))
    elif command == "down":
        assert "--yes" in args
        _stop(svc)
        print("The most recent deployment has been removed")
    elif command in ("redeploy", "restart"):
        assert "--yes" in args
        if command == "redeploy":
            deployed[name] = dict(variables[name])
        _deploy(svc, deployed[name])
    elif command == "logs":
        assert "--json" in args and "--deployment" in args
        n = int(_flag(args, "--lines") or 0)
        try:
            text = Path(svc["log"]).read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines()[-n:] if n else []:
            print(json.dumps({"message": line, "severity": "info", "timestamp": "-"}))
    elif command == "variable set":
        assert stdin is not None and "--skip-deploys" in args
        variables[name][args[2]] = stdin.rstrip("\n")
    elif command == "variable list":
        assert "--json" in args
        print(json.dumps(variables[name]))
    else:
        print(f"unknown command {args}", file=sys.stderr)
        return 2
    (here / "vars.json").write_text(json.dumps(variables))
    (here / "deployed.json").write_text(json.dumps(deployed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
