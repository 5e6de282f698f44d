"""A local certificate authority and a loopback server certificate for the HTTPS stand-ins.

azure-core refuses to send bearer tokens over plain http, so the stand-ins speak HTTPS. Clients
trust the generated CA through a CA-bundle path (azure-core ``connection_verify=<ca.pem>``),
exactly as they would trust a corporate CA; nothing is added to the system trust store.

Generated once into a directory and reused while valid, so CA bundles handed to clients stay
stable across restarts. Several stand-ins may start at once, hence the directory lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
CA_LIFETIME_DAYS = 3650
# Browsers and strict clients refuse leaf certificates valid for more than 398 days.
SERVER_LIFETIME_DAYS = 397
# Regenerate before expiry so a long-running stack never crosses the boundary mid-test.
RENEW_MARGIN = dt.timedelta(days=7)
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class TlsFiles:
    """Where the generated PEM files live. ``ca_cert`` is the bundle clients trust."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, tls_dir: Path) -> TlsFiles:
        return cls(
            ca_cert=tls_dir / "ca.pem",
            ca_key=tls_dir / "ca-key.pem",
            server_cert=tls_dir / "server.pem",
            server_key=tls_dir / "server-key.pem",
        )

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext for a server presenting the loopback certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert, self.server_key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSLContext for clients (aiohttp, httpx) that trusts only the local CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def ensure_tls(tls_dir: str | Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsFiles:
    """Create the CA and server certificate in ``tls_dir`` unless valid ones are already there."""
    directory = Path(tls_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles.in_dir(directory)
    now = dt.datetime.now(dt.UTC)
    with _locked(directory / ".lock"):
        ca = _load_valid_ca(files, now)
        if ca is None:
            ca = _write_ca(files, now)
            _write_server(files, ca, hosts, now)
        elif not _server_is_valid(files, ca[0], hosts, now):
            _write_server(files, ca, hosts, now)
    return files


def server_ssl_context(tls_dir: str | Path) -> tuple[TlsFiles, ssl.SSLContext]:
    """Ensure the certificates exist and return them with a ready server SSLContext."""
    files = ensure_tls(tls_dir)
    return files, files.server_context()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_CaPair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _load_valid_ca(files: TlsFiles, now: dt.datetime) -> _CaPair | None:
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_MARGIN <= now:
        return None
    return cert, key


def _server_is_valid(
    files: TlsFiles, ca_cert: x509.Certificate, hosts: Sequence[str], now: dt.datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if key.public_key() != cert.public_key() or cert.not_valid_after_utc - RENEW_MARGIN <= now:
        return False
    return set(_san_entries(hosts)) <= set(names)


def _san_entries(hosts: Sequence[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """EC keys sign (TLS handshakes); only the CA's also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _write_ca(files: TlsFiles, now: dt.datetime) -> _CaPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local stand-ins development CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(files.ca_key, _key_pem(key))
    _write_public(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _write_server(files: TlsFiles, ca: _CaPair, hosts: Sequence[str], now: dt.datetime) -> None:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_LIFETIME_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.server_key, _key_pem(key))
    _write_public(files.server_cert, cert.public_bytes(serialization.Encoding.PEM))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: a chmod after writing would leave a window where the key is readable.
    tmp = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
