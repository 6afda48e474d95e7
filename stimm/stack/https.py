"""HTTPS in front of the local stack (``stimm dev --public-host``).

A browser opens the microphone only on a secure origin (https, or plain http on localhost), so a
phone on the same network can talk to an agent only over HTTPS. Traefik (pinned, built like the
LiveKit binaries) terminates TLS with a self-signed certificate and serves the console, the API
and LiveKit's signalling websocket on one port: one origin, so the one certificate warning the
user accepts also covers the ``wss://`` connection to LiveKit.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stimm.private_files import private_dir, write_private

from .process import StackError

LIVEKIT_RULE = "PathPrefix(`/rtc`)"
"""What goes to livekit-server: its signalling websocket (``/rtc``, ``/rtc/v1``) and the
client's ``/rtc/validate``; everything else is the control plane. infra/traefik.yml routes the
same paths."""

CERT_DAYS = 397
"""Browsers refuse server certificates valid for longer than 398 days."""
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Certificate:
    """A PEM certificate and its private key (readable by its owner only)."""

    cert: Path
    key: Path


def ensure_certificate(folder: Path, host: str) -> Certificate:
    """A self-signed certificate for ``host``, ``127.0.0.1`` and ``localhost`` in ``folder``.

    Made on first use, and again when the one there does not name ``host`` or expires within
    30 days; otherwise kept, so a phone that accepted it once is not asked again.
    """
    private_dir(folder)
    found = Certificate(folder / "cert.pem", folder / "key.pem")
    if found.cert.is_file() and found.key.is_file() and _still_good(found.cert, host):
        return found
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Stimm dev ({host})")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(found.key, pem_key.decode())
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return found


def _alt_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    return list(dict.fromkeys(names))


def _still_good(path: Path, host: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    expires = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return expires > RENEW_BEFORE and all(n in alt for n in _alt_names(host))


def node_ip(host: str) -> str:
    """The IPv4 address LiveKit announces for media: ``host``, or what its name resolves to."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError as e:
        raise StackError(f"public host {host!r} does not resolve to an address: {e}") from e


def traefik_static_config(port: int, dynamic_config: Path) -> dict[str, Any]:
    """Traefik's start-up configuration: one TLS entry point on every interface."""
    return {
        "entryPoints": {"websecure": {"address": f":{port}"}},
        "providers": {"file": {"filename": str(dynamic_config), "watch": False}},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "INFO"},
    }


def traefik_dynamic_config(
    certificate: Certificate, control_plane_port: int, livekit_port: int
) -> dict[str, Any]:
    """Routers: LiveKit's signalling to livekit-server, the rest to the control plane."""
    files = {"certFile": str(certificate.cert), "keyFile": str(certificate.key)}
    return {
        "http": {
            "routers": {
                "livekit": {
                    "rule": LIVEKIT_RULE,
                    "entryPoints": ["websecure"],
                    "service": "livekit",
                    "tls": {},
                },
                "control-plane": {
                    "rule": "PathPrefix(`/`)",
                    "entryPoints": ["websecure"],
                    "service": "control-plane",
                    "tls": {},
                },
            },
            "services": {
                "livekit": _upstream(livekit_port),
                "control-plane": _upstream(control_plane_port),
            },
        },
        # a browser sends no server name (SNI) to an IP address: the default certificate is
        # the one it gets
        "tls": {
            "certificates": [files],
            "stores": {"default": {"defaultCertificate": files}},
        },
    }


def _upstream(port: int) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}


def https_ok(url: str, certificate: Certificate) -> bool:
    """``url`` answers 2xx over TLS with ``certificate`` (verified against itself)."""
    context = ssl.create_default_context(cafile=str(certificate.cert))
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
