"""The proxy's certificate: the site's own (site.toml `[hub] tls_cert`/`tls_key`), checked
readable by the proxy's account, or a self-signed one made for the hub's host
(`tls_self_signed`), kept with root's copy of the hub's config.

configurable-http-proxy reads the files itself, as `factoryhub-proxy`: a self-signed key is
that account's, mode 0400, in a folder only root writes to; its certificate is public (0644).
The hub's state directory (0700, the hub's account's) is no place for it: the proxy could not
read it there, and the hub's account has no business with the key.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from factoryhub.site import HubSettings

from .daemons import open_nofollow

SELF_SIGNED_DAYS = 365
RENEW_DAYS = 30  # a self-signed certificate this close to its end is made again at start


@dataclass(frozen=True)
class TLSFiles:
    """The certificate (chain) and key the proxy serves HTTPS with."""

    cert: Path
    key: Path


def tls_files(hub: HubSettings, config_dir: Path) -> TLSFiles | None:
    """Where the proxy reads its certificate and key; None for plain HTTP (pure)."""
    if hub.tls_cert:
        return TLSFiles(Path(hub.tls_cert), Path(hub.tls_key))
    if hub.tls_self_signed:
        return TLSFiles(config_dir / "tls" / "cert.pem", config_dir / "tls" / "key.pem")
    return None


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def self_signed(host: str, days: int = SELF_SIGNED_DAYS) -> tuple[bytes, bytes]:
    """A self-signed certificate for `host` (a name or an address) and its key, PEM (pure)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
        # a server certificate (Firefox refuses a CA certificate as a server's)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def still_good(cert_pem: bytes, host: str, now: datetime.datetime | None = None) -> bool:
    """Whether a certificate names `host` and has more than `RENEW_DAYS` left (pure)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    now = now or datetime.datetime.now(datetime.UTC)
    left = cert.not_valid_after_utc - now
    return _san(host) in list(names) and left > datetime.timedelta(days=RENEW_DAYS)


def _write(path: Path, data: bytes, owner: str, mode: int) -> None:
    """Write `path` anew (never through a link), owned by `owner` with `mode`."""
    staged = path.with_name(f".{path.name}.new")
    staged.unlink(missing_ok=True)
    fd = open_nofollow(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    account = pwd.getpwnam(owner)
    os.fchown(fd, account.pw_uid, account.pw_gid)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    staged.replace(path)


def ensure_self_signed(files: TLSFiles, url: str, proxy_user: str) -> bool:
    """Make a self-signed certificate for `url`'s host unless a good one is there (root's
    folder 0755; the key the proxy's account's, 0400); True when one was made."""
    host = urlparse(url).hostname or "localhost"
    files.cert.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(files.cert.parent, 0, 0, follow_symlinks=False)
    files.cert.parent.chmod(0o755)
    try:
        with os.fdopen(open_nofollow(files.cert, os.O_RDONLY), "rb") as cert:
            if still_good(cert.read(), host) and files.key.is_file():
                return False
    except OSError:
        pass
    cert_pem, key_pem = self_signed(host)
    _write(files.key, key_pem, proxy_user, 0o400)
    _write(files.cert, cert_pem, "root", 0o644)
    return True


def proxy_can_read(files: TLSFiles, proxy_user: str) -> list[str]:
    """Sentences for each file of the site's own certificate the proxy's account cannot read
    (checked as that account: its groups and every folder on the way count)."""
    problems = []
    for what, path in (("tls_cert", files.cert), ("tls_key", files.key)):
        readable = subprocess.run(
            ["runuser", "-u", proxy_user, "--", "test", "-r", str(path)], check=False
        )
        if readable.returncode != 0:
            problems.append(
                f"hub.{what} {path}: the proxy's account {proxy_user} cannot read it (missing,"
                f" or give it the file's group, e.g. `chgrp ssl-cert {path}` and"
                f" `usermod -aG ssl-cert {proxy_user}`)"
            )
    return problems
