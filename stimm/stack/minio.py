"""A local MinIO server: the S3-compatible bucket the recordings store is tested against."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from .binaries import MINIO, ensure_binary
from .process import ManagedProcess, free_port, http_ok


@dataclass(frozen=True)
class MinioServer:
    process: ManagedProcess
    endpoint_url: str
    access_key: str
    secret_key: str


def start_minio(log_dir: Path, data_dir: Path) -> MinioServer:
    """Start MinIO on loopback with fresh root credentials, storing under ``data_dir``."""
    port, console_port = free_port(), free_port()
    access_key, secret_key = "stimm-" + secrets.token_hex(6), secrets.token_urlsafe(24)
    proc = ManagedProcess(
        "minio",
        [
            str(ensure_binary(MINIO)),
            "server",
            str(data_dir),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console_port}",
            "--quiet",
        ],
        log_dir=log_dir,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(data_dir),
            "MINIO_ROOT_USER": access_key,
            "MINIO_ROOT_PASSWORD": secret_key,
            "MINIO_BROWSER": "off",
        },
        stop_timeout=5.0,
    )
    proc.start()
    endpoint = f"http://127.0.0.1:{port}"
    proc.wait_ready(lambda: http_ok(f"{endpoint}/minio/health/live"), timeout=30)
    return MinioServer(proc, endpoint, access_key, secret_key)
