"""Throwaway certificates for TLS tests, made with the openssl CLI (EC keys: fast to make)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
VALID_DAYS = "2"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


class ThrowawayCa:
    """A CA in `directory` that signs a server cert for 127.0.0.1 and client certs by CN."""

    def __init__(self, directory: Path, name: str = "test-ca"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.cert = self.dir / f"{name}.crt"
        self.key = self.dir / f"{name}.key"
        _openssl("req", "-x509", *KEY_ARGS, "-keyout", str(self.key), "-out", str(self.cert),
                 "-subj", f"/CN={name}", "-days", VALID_DAYS, cwd=self.dir)

    def issue(self, common_name: str, *, server: bool = False) -> CertPair:
        stem = self.dir / common_name.replace("/", "_")
        key, csr, cert = (stem.with_suffix(s) for s in (".key", ".csr", ".crt"))
        _openssl("req", *KEY_ARGS, "-keyout", str(key), "-out", str(csr),
                 "-subj", "/CN=" + common_name.replace("/", "\\/"), cwd=self.dir)
        ext = stem.with_suffix(".ext")
        ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n" if server
                       else "extendedKeyUsage = clientAuth\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", VALID_DAYS,
                 "-extfile", str(ext), cwd=self.dir)
        return CertPair(cert, key)
