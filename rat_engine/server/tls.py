"""A self-signed certificate for development (``app.enable_development_mode()``, ``--dev-tls``).

One certificate and key per user, in ``$XDG_CACHE_HOME/rat_engine/dev-tls`` (else
``~/.cache/rat_engine/dev-tls``): reused while it is valid for another day and names exactly the
requested hostnames, made again otherwise. The key file is readable by its owner only (0600).

Made with the ``cryptography`` package, imported only when a certificate has to be read or made
(``pip install 'rat_engine[tls]'``). Nothing happens on import. Browsers do not trust the
certificate: they warn once per origin (or run Chromium with ``--ignore-certificate-errors``);
Python clients can trust it with ``ssl.create_default_context(cafile=certfile)``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HOSTNAMES",
    "DevCertificate",
    "default_cache_dir",
    "development_certificate",
    "normalize_hostnames",
]

#: RAT Engine's default for ``enable_development_mode(hostnames=...)``.
DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1")

#: How long a new certificate is valid (browsers cap server certificates at 398 days).
VALID_DAYS = 365

#: A cached certificate is made again when it expires within this time.
RENEW_BEFORE = datetime.timedelta(days=1)

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"

_MISSING = (
    "a development certificate needs the 'cryptography' package: pip install 'rat_engine[tls]' "
    "(or pass ssl_certfile= and ssl_keyfile= of a certificate you have)"
)


@dataclass(frozen=True)
class DevCertificate:
    """Where the certificate and its key are, which names it covers, and until when."""

    certfile: str
    keyfile: str
    hostnames: tuple[str, ...]
    not_after: datetime.datetime
    created: bool  # made by this call (False: reused from the cache)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rat_engine/dev-tls``, else ``~/.cache/rat_engine/dev-tls``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rat_engine" / "dev-tls"


def normalize_hostnames(hostnames: Iterable[str] | str) -> tuple[str, ...]:
    """The names in a canonical form: DNS names lower-case ASCII (IDNA), IP addresses
    compressed; duplicates dropped, order kept. Raises ``ValueError`` for an empty list or a
    name that cannot be in a certificate."""
    if isinstance(hostnames, str):
        hostnames = [hostnames]
    names: list[str] = []
    for raw in hostnames:
        name = str(raw).strip().rstrip(".")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]  # "[::1]" as in a URL
        try:
            name = str(ipaddress.ip_address(name))
        except ValueError:
            name = _dns_name(name)
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("a development certificate needs at least one hostname")
    return tuple(names)


def _dns_name(name: str) -> str:
    if not name or any(c.isspace() or c in "/:@?#" for c in name):
        raise ValueError(f"not a hostname for a certificate: {name!r}")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"not a hostname for a certificate: {name!r} ({exc})") from None
    return name.lower()


def development_certificate(
    hostnames: Iterable[str] | str = DEFAULT_HOSTNAMES,
    directory: str | os.PathLike[str] | None = None,
    *,
    days: int = VALID_DAYS,
) -> DevCertificate:
    """The cached self-signed certificate for ``hostnames`` in ``directory`` (default:
    :func:`default_cache_dir`), made (again) if it is missing, unreadable, expires within a day,
    names other hosts, does not match its key, or its key file is readable by others.

    Raises ``ImportError`` (naming the pip command) without the ``cryptography`` package.
    """
    names = normalize_hostnames(hostnames)
    folder = Path(directory) if directory is not None else default_cache_dir()
    certfile, keyfile = folder / CERT_NAME, folder / KEY_NAME
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    cached = _load_cached(certfile, keyfile, names)
    if cached is not None:
        logger.debug("reusing the development certificate %s (%s)", certfile, ", ".join(names))
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)
    cert_pem, key_pem, not_after = _make(names, days)
    # Key first: a reader that sees the new certificate with the old key finds them mismatched
    # and makes its own pair, never serves a wrong one.
    _write_atomic(keyfile, key_pem, 0o600)
    _write_atomic(certfile, cert_pem, 0o644)
    logger.info(
        "made a self-signed development certificate for %s, valid until %s: %s",
        ", ".join(names),
        not_after.date().isoformat(),
        certfile,
    )
    return DevCertificate(str(certfile), str(keyfile), names, not_after, created=True)


def _load_cached(certfile: Path, keyfile: Path, names: tuple[str, ...]) -> DevCertificate | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        if os.name == "posix" and keyfile.stat().st_mode & 0o077:
            return None  # a key others can read is not a key to keep using
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        key = serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
        return None
    not_after = cert.not_valid_after_utc
    if not_after - RENEW_BEFORE <= datetime.datetime.now(datetime.UTC):
        return None
    if set(san_names(cert)) != set(names):
        return None
    return DevCertificate(str(certfile), str(keyfile), names, not_after, created=False)


def _public_bytes(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def san_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses (as strings) in a certificate's subjectAltName."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = [str(name).lower() for name in san.get_values_for_type(x509.DNSName)]
    ips = [str(address) for address in san.get_values_for_type(x509.IPAddress)]
    return tuple(dns + ips)


def _make(names: tuple[str, ...], days: int) -> tuple[bytes, bytes, datetime.datetime]:
    """A P-256 key and a self-signed server certificate naming ``names`` (PEM, PEM, expiry)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rat_engine development"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
        ]
    )
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # a client clock slightly behind
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, cert.not_valid_after_utc


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (created with
    ``mode``, so a key is never readable by others, not even for a moment), then rename."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
