"""Throwaway certificates with chosen validity dates (openssl CLI, EC keys: fast to make).

`openssl ca` is used rather than `openssl x509 -req` because it takes explicit start and end
dates, which is the only way to make an already expired certificate for a test.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
CA_CONFIG = """[ca]
default_ca = local
[local]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%SZ")


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


class DatedCa:
    def __init__(self, directory: Path, name: str = "line-ca", days: int = 400):
        self.dir = directory
        (self.dir / "issued").mkdir(parents=True, exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "ca.cnf").write_text(CA_CONFIG)
        self.cert, self.key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        _openssl("req", "-x509", *KEY_ARGS, "-keyout", str(self.key), "-out", str(self.cert),
                 "-subj", f"/CN={name}", "-days", str(days), cwd=self.dir)

    def issue(self, common_name: str, *, server: bool = False, valid_from_days: float = -1,
              valid_until_days: float = 365, label: str = "") -> CertPair:
        """A certificate valid from now+valid_from_days to now+valid_until_days; `label` keeps
        the files of several certificates for one name apart."""
        stem = self.dir / (common_name.replace("/", "_") + (f"-{label}" if label else ""))
        key, csr, cert = (stem.with_suffix(s) for s in (".key", ".csr", ".crt"))
        _openssl("req", *KEY_ARGS, "-keyout", str(key), "-out", str(csr),
                 "-subj", "/CN=" + common_name.replace("/", "\\/"), cwd=self.dir)
        ext = stem.with_suffix(".ext")
        ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n" if server
                       else "extendedKeyUsage = clientAuth\n")
        now = datetime.now(UTC)
        _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", str(self.cert),
                 "-keyfile", str(self.key), "-in", str(csr), "-out", str(cert),
                 "-extfile", str(ext),
                 "-startdate", _stamp(now + timedelta(days=valid_from_days)),
                 "-enddate", _stamp(now + timedelta(days=valid_until_days)), cwd=self.dir)
        return CertPair(cert, key)
