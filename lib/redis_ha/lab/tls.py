"""A throwaway certificate authority for a TLS lab (openssl from Debian's `openssl` package).

One CA, and one certificate for 127.0.0.1/::1/localhost that every node, Sentinel and the tool
use; the keys are mode 0600 and live in the lab folder, so `lab.down` removes them with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from redis_ha.errors import LabError
from redis_ha.inventory import Tls

DAYS = "30"


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise LabError("openssl not found: install it (apt-get install openssl) for a TLS lab")
    r = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise LabError(f"openssl {args[0]} failed: {r.stderr.strip().splitlines()[-1:]}")


def ensure_ca(tls: Tls) -> None:
    """Create the CA, certificate and key the inventory names, unless they all exist."""
    files = (tls.ca_file, tls.cert_file, tls.key_file)
    if all(p.exists() for p in files):
        return
    work = tls.key_file.parent
    work.mkdir(parents=True, exist_ok=True)
    ca_key = work / "lab-ca.key"
    _openssl("genrsa", "-out", str(ca_key), "2048", cwd=work)
    _openssl(
        "req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", DAYS,
        "-subj", "/CN=redis-ha-runbooks lab CA", "-out", str(tls.ca_file), cwd=work,
    )  # fmt: skip
    _openssl("genrsa", "-out", str(tls.key_file), "2048", cwd=work)
    csr = work / "lab.csr"
    ext = work / "lab.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
    _openssl("req", "-new", "-key", str(tls.key_file), "-subj", "/CN=127.0.0.1",
             "-out", str(csr), cwd=work)  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(tls.ca_file), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", DAYS, "-sha256", "-extfile", str(ext),
        "-out", str(tls.cert_file), cwd=work,
    )  # fmt: skip
    for p in (ca_key, tls.key_file):
        os.chmod(p, 0o600)
    csr.unlink(missing_ok=True)
