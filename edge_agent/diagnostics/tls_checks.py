"""The broker's TLS files: present, parseable, signed by the CA, and not expired or expiring.

Certificates are read with the `openssl` command line (on every Debian image, and the same tool
a technician would use by hand), so no new Python dependency is needed for parsing X.509.
"""

from __future__ import annotations

import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import TlsConfig
from edge_agent.diagnostics.results import CheckResult, failed, passed, warned

# Renewing a line's certificate takes a ticket to central: warn a month ahead.
EXPIRY_WARN_DAYS = 30
OPENSSL_TIMEOUT_S = 10.0
DAY_S = 86400


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_after: str  # as openssl prints it, e.g. "Feb  1 00:00:00 2020 GMT"
    expires_in_days: float


class CertError(Exception):
    pass


def _openssl(*args: str) -> str:
    try:
        done = subprocess.run(["openssl", *args], capture_output=True, text=True,
                              timeout=OPENSSL_TIMEOUT_S)
    except FileNotFoundError:
        raise CertError("openssl not installed (apt-get install openssl)") from None
    except subprocess.TimeoutExpired:
        raise CertError("openssl did not answer") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise CertError(last)
    return done.stdout


def read_cert(path: Path) -> CertInfo:
    if not path.is_file():
        raise CertError(f"{path}: not found")
    text = _openssl("x509", "-in", str(path), "-noout", "-subject", "-issuer", "-enddate")
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    not_after = fields.get("notAfter", "").strip()
    try:
        expires = ssl.cert_time_to_seconds(not_after)
    except ValueError:
        raise CertError(f"{path}: unreadable expiry date {not_after!r}") from None
    return CertInfo(fields.get("subject", "").strip(), fields.get("issuer", "").strip(),
                    not_after, (expires - time.time()) / DAY_S)


def check_tls_files(tls: TlsConfig) -> list[CheckResult]:
    results = [_check_cert("TLS CA certificate", tls.ca_file)]
    if tls.cert_file is not None:
        client = _check_cert("TLS client certificate", tls.cert_file)
        results.append(client)
        if client.status != "fail":
            results.append(_check_signed_by(tls.cert_file, tls.ca_file))
    if tls.key_file is not None:
        results.append(_check_key(tls.key_file))
    return results


def _check_cert(name: str, path: Path) -> CheckResult:
    try:
        info = read_cert(path)
    except CertError as exc:
        return failed(name, str(exc), "install the certificate file central issued for this line")
    days = info.expires_in_days
    detail = f"{info.subject}, expires {info.not_after}"
    if days < 0:
        return failed(name, f"EXPIRED {-days:.0f} days ago: {detail}",
                      "ask central for a new certificate; the broker refuses expired ones")
    if days < EXPIRY_WARN_DAYS:
        return warned(name, f"expires in {days:.1f} days: {detail}",
                      "ask central now for a renewed certificate")
    return passed(name, f"{detail} ({days:.0f} days left)")


def _check_signed_by(cert: Path, ca: Path) -> CheckResult:
    name = "TLS client certificate chain"
    try:
        _openssl("verify", "-CAfile", str(ca), str(cert))
    except CertError as exc:
        return failed(name, f"not signed by {ca.name}: {exc}",
                      "the certificate and the CA file come from different issuers")
    return passed(name, f"signed by {ca.name}")


def _check_key(path: Path) -> CheckResult:
    name = "TLS client key"
    try:
        with path.open("rb"):
            pass  # opened only: a key's content is never read into the doctor's output
        mode = path.stat().st_mode
    except OSError as exc:
        return failed(name, f"{path}: {exc.strerror or exc}",
                      "the key must be readable by the service user only "
                      "(chown edge-agent, chmod 0400)")
    if mode & 0o077:
        # Whoever else can read the key can be this line on the broker.
        return warned(name, f"{path} is readable by others than its owner "
                      f"(mode {mode & 0o777:04o})",
                      f"sudo chown edge-agent {path} && sudo chmod 0400 {path}")
    return passed(name, f"{path} readable by its owner only")
