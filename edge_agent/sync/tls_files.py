"""The link's TLS files checked before use: present, readable, PEM of the right kind.

Why before use: paho's `tls_set` raises FileNotFoundError or ssl.SSLError for a missing or
malformed file, and raised at start-up that stopped the whole line over a link problem. The
same checks serve `config check`, which can then say which file is wrong and why. The content
of a key is read only to see its PEM markers; it never reaches a message.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from edge_agent.config import TlsConfig

# A certificate or key file is a few kilobytes; a bigger one is the wrong file.
MAX_PEM_BYTES = 1024 * 1024
_CERT_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s+.+?-----END CERTIFICATE-----", re.DOTALL)
_KEY_BLOCK = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")


def _read(what: str, path: Path) -> tuple[bytes | None, str | None]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PEM_BYTES + 1)
    except FileNotFoundError:
        return None, f"{what} {path}: not found"
    except PermissionError:
        return None, f"{what} {path}: permission denied (the service user must read it)"
    except IsADirectoryError:
        return None, f"{what} {path}: is a directory"
    except OSError as exc:
        return None, f"{what} {path}: {exc.strerror or exc}"
    if len(data) > MAX_PEM_BYTES:
        return None, f"{what} {path}: larger than {MAX_PEM_BYTES} bytes, not a PEM file"
    return data, None


def _cert_problem(what: str, path: Path) -> str | None:
    data, problem = _read(what, path)
    if data is None:
        return problem
    blocks = _CERT_BLOCK.findall(data)
    if not blocks:
        return f"{what} {path}: not a PEM certificate (no BEGIN CERTIFICATE block)"
    for block in blocks:
        try:
            ssl.PEM_cert_to_DER_cert(block.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return f"{what} {path}: a certificate block is not valid base64"
    return None


def _key_problem(path: Path) -> str | None:
    data, problem = _read("mqtt.tls.key_file", path)
    if data is None:
        return problem
    if not _KEY_BLOCK.search(data):
        return f"mqtt.tls.key_file {path}: not a PEM private key (no BEGIN PRIVATE KEY block)"
    return None


def tls_problems(tls: TlsConfig) -> list[str]:
    """Every problem with the configured TLS files, each naming its setting and path."""
    problems = [_cert_problem("mqtt.tls.ca_file", tls.ca_file)]
    if tls.cert_file is not None:
        problems.append(_cert_problem("mqtt.tls.cert_file", tls.cert_file))
    if tls.key_file is not None:
        problems.append(_key_problem(tls.key_file))
    return [problem for problem in problems if problem is not None]
