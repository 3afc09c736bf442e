"""Throw-away TLS material for the suite's servers, made with the ``openssl`` CLI."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerCert:
    ca_key: Path
    ca_cert: Path
    key: Path  # unencrypted PKCS#8 ("BEGIN PRIVATE KEY")
    cert: Path


def openssl(steps: list[list[str | Path]], error: type[Exception]) -> None:
    """Run each ``openssl`` command in turn; the first failure raises ``error``."""
    binary = shutil.which("openssl")
    if binary is None:
        raise error("openssl is not on PATH: it is needed to make test certificates")
    for step in steps:
        result = subprocess.run(
            [binary, *(str(arg) for arg in step)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.splitlines()[-20:])
            raise error(f"openssl {step[0]} failed:\n{tail}")


def issue_server_cert(
    ca_dir: Path,
    key: Path,
    cert: Path,
    *,
    ca_name: str,
    common_name: str,
    alt_names: str,
    error: type[Exception],
) -> ServerCert:
    """A CA (in ``ca_dir``) and a serverAuth certificate it signed, EC P-256, valid 7 days."""
    for directory in (ca_dir, key.parent, cert.parent):
        directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = ca_dir / "ca.key", ca_dir / "ca.pem"
    csr, ext = ca_dir / f"{cert.stem}.csr", ca_dir / f"{cert.stem}.ext"
    ext.write_text(
        f"subjectAltName = {alt_names}\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps: list[list[str | Path]] = [
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "7",
         "-subj", f"/CN={ca_name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={common_name}"],
        ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "7", "-extfile", ext, "-out", cert],
    ]  # fmt: skip
    openssl(steps, error)
    for private in (ca_key, key):
        private.chmod(0o600)
    return ServerCert(ca_key=ca_key, ca_cert=ca_cert, key=key, cert=cert)
