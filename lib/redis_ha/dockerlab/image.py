"""The lab's one image, built from this machine's own files: no registry is needed or reached.

A root filesystem holding redis-server, redis-cli, this Python (its standard library only), the
package and the distributions it needs (copied from the running environment), every shared
library `ldd` names and the NSS libraries that resolve container names, imported with
`docker import`. Redis nodes, Sentinels and the ops container all run it. The tag is a hash of
what went in, so an unchanged tree reuses the image built before.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis_ha
from redis_ha.errors import HAError
from redis_ha.lab import binaries as binmod

REPO = "redis-ha-runbooks"
SITE = "/opt/redis-ha/site"
PYTHON = "/usr/local/bin/python"
DIST = "redis-ha-runbooks"
# Beyond the declared dependencies: the docker backend (ops container) and redis-py's parser.
EXTRA_DISTS = ("docker", "hiredis")
NSS = ("libnss_dns.so.2", "libnss_files.so.2", "libresolv.so.2")
_SKIP_STDLIB = {
    "test",
    "site-packages",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
}


def _dists() -> list[md.Distribution]:
    """The installed distributions the package needs at run time (no extras), and EXTRA_DISTS."""
    seen: dict[str, md.Distribution] = {}
    todo = [DIST, *EXTRA_DISTS]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise HAError(f"cannot build the lab image: {name} is not installed here") from None
        seen[name] = dist
        todo += [r for r in map(_needed, dist.requires or []) if r]
    return [d for n, d in sorted(seen.items()) if n != _norm(DIST)]


def _needed(req: str) -> str | None:
    """The distribution a requirement names, if it applies here without extras."""
    from packaging.requirements import Requirement  # installed with pip, build time only

    r = Requirement(req)
    if r.marker is not None and not r.marker.evaluate({"extra": ""}):
        return None
    return r.name


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _package_files() -> Iterator[tuple[Path, str]]:
    """(source, path in the image) of the package itself, data links followed."""
    root = Path(redis_ha.__file__).resolve().parent
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            src = Path(dirpath) / f
            yield src, f"{SITE}/redis_ha/{src.relative_to(root)}"


def _dist_files(dist: md.Distribution) -> Iterator[tuple[Path, str]]:
    for f in dist.files or []:
        src = Path(str(dist.locate_file(f))).resolve()
        if "__pycache__" in f.parts or ".." in f.parts or not src.is_file():
            continue
        yield src, f"{SITE}/{f}"


def _stdlib_files() -> Iterator[tuple[Path, str]]:
    lib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    for dirpath, dirnames, filenames in os.walk(lib):
        rel = Path(dirpath).relative_to(lib)
        if rel == Path("."):
            dirnames[:] = [
                d for d in dirnames if d not in _SKIP_STDLIB and not d.startswith("config-")
            ]
        for f in filenames:
            src = Path(dirpath) / f
            yield src, str(src)


def _python() -> Path:
    exe = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return exe if exe.exists() else Path(os.path.realpath(sys.executable))


def _libraries(elfs: list[Path]) -> set[Path]:
    """Every shared library `ldd` names for these files, and the NSS ones."""
    found: set[Path] = set()
    for elf in elfs:
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
        found |= {Path(p) for p in re.findall(r"(/\S+) \(0x", out)}
        found |= {Path(p) for p in re.findall(r"=> (/\S+)", out)}
    for name in NSS:
        for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"):
            if Path(d, name).exists():
                found.add(Path(d, name))
    return found


def contents() -> list[tuple[Path, str]]:
    """(source on this machine, path in the image) of every file, in a stable order."""
    found = binmod.resolve("redis")  # the image runs Redis (the entry and configs name it)
    server = found.server
    cli = found.cli or str(Path(server).with_name("redis-cli"))
    files: list[tuple[Path, str]] = [
        (Path(server).resolve(), "/usr/bin/redis-server"),
        (Path(cli).resolve(), "/usr/bin/redis-cli"),
        (_python(), str(_python())),
    ]
    files += _stdlib_files()
    files += _package_files()
    for d in _dists():
        files += _dist_files(d)
    elfs = [s for s, _ in files if s.suffix == ".so" or s.name.startswith(("redis-", "python"))]
    files += [(lib, str(lib)) for lib in sorted(_libraries(elfs))]
    return sorted(set(files), key=lambda f: f[1])


def tag_for(files: list[tuple[Path, str]]) -> str:
    """`redis-ha-runbooks:<hash of every file's path, size and content time>`."""
    h = hashlib.sha256()
    for src, dst in files:
        st = src.stat()
        h.update(f"{dst}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"{REPO}:{h.hexdigest()[:12]}"


_ETC = {
    "etc/nsswitch.conf": "hosts: files dns\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/false\n",
    "etc/group": "root:x:0:\n",
}


def _entry(path: str, mode: int, data: bytes | None = None, link: str | None = None) -> Any:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.mode = mode
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
    elif data is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(data)
    return info


def _write_tar(files: list[tuple[Path, str]], out: Path) -> None:
    import io

    with tarfile.open(out, "w", dereference=True) as tar:
        for d in ("tmp", "data", "etc/redis-ha", "root"):
            tar.addfile(_entry(d, 0o1777 if d == "tmp" else 0o755))
        for path, text in _ETC.items():
            tar.addfile(_entry(path, 0o644, text.encode()), io.BytesIO(text.encode()))
        for src, dst in files:
            tar.add(str(src), arcname=dst.lstrip("/"), recursive=False)
        tar.addfile(_entry("usr/bin/redis-sentinel", 0o777, link="redis-server"))
        tar.addfile(_entry(PYTHON, 0o777, link=str(_python())))
        script = f"#!{PYTHON}\nfrom redis_ha.cli.app import main\nmain()\n".encode()
        tar.addfile(_entry("usr/local/bin/redis-ha", 0o755, script), io.BytesIO(script))


def ensure(docker: Any) -> str:
    """The tag of the lab image, importing it first unless the engine already has it."""
    files = contents()
    tag = tag_for(files)
    try:
        docker.images.get(tag)
        return tag
    except Exception:  # docker.errors.ImageNotFound, without importing docker here
        pass
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "rootfs.tar"
        _write_tar(files, tar)
        repo, _, version = tag.partition(":")
        docker.api.import_image(
            src=str(tar),
            repository=repo,
            tag=version,
            changes=[
                f"ENV PYTHONPATH={SITE}",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                "ENV PYTHONDONTWRITEBYTECODE=1",
                "WORKDIR /data",
            ],
        )
    docker.images.get(tag)
    return tag
