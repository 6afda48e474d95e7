"""The self-signed certificate of ``stimm dev --public-host``: it names the address a phone
opens, its key is the owner's alone, and it is kept across restarts (a phone that accepted it
once is not asked again) until the public host changes."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from stimm.stack import LocalStack, StackOptions
from stimm.stack.https import ensure_certificate
from stimm.stack.process import PortInUse, free_port

pytestmark = pytest.mark.unit


def alt_names(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in alt.get_values_for_type(x509.IPAddress)] + alt.get_values_for_type(
        x509.DNSName
    )


def test_the_certificate_names_the_public_host_and_loopback(tmp_path: Path) -> None:
    made = ensure_certificate(tmp_path / "tls", "192.168.1.23")
    assert {"192.168.1.23", "127.0.0.1", "localhost"} <= set(alt_names(made.cert))
    assert made.key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700

    named = ensure_certificate(tmp_path / "named", "stimm-box.local")
    assert "stimm-box.local" in alt_names(named.cert)


def test_a_tls_client_that_trusts_it_connects_to_127_0_0_1(tmp_path: Path) -> None:
    made = ensure_certificate(tmp_path, "192.168.1.23")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(made.cert, made.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        server = threading.Thread(target=accept)
        server.start()
        client_ctx = ssl.create_default_context(cafile=str(made.cert))
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
        server.join()


def test_it_is_kept_across_restarts_until_the_host_changes(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, "192.168.1.23").cert.read_bytes()
    assert ensure_certificate(tmp_path, "192.168.1.23").cert.read_bytes() == first
    moved = ensure_certificate(tmp_path, "10.0.0.7")
    assert moved.cert.read_bytes() != first
    assert str(ipaddress.ip_address("10.0.0.7")) in alt_names(moved.cert)


def test_a_busy_https_port_names_its_setting(tmp_path: Path) -> None:
    with socket.create_server(("0.0.0.0", free_port())) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse) as e:
            LocalStack(StackOptions(run_dir=tmp_path, public_host="127.0.0.1", https_port=port))
    assert e.value.setting == "https_port" and e.value.port == port
