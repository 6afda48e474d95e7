"""Go-built binaries (LiveKit, toxiproxy, MinIO), pinned and cached under a git-ignored folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

logger = logging.getLogger("stimm.stack")

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GoBinary:
    """A Go program installed with ``go install <package>@<version>``."""

    name: str
    package: str
    version: str
    cgo: bool = False
    module: str | None = None
    """Set to build from the downloaded module (``go mod download`` + ``go build``) instead of
    ``go install``, whose deprecation check needs the module's version list."""


LIVEKIT_SERVER = GoBinary(
    name="livekit-server",
    package="github.com/livekit/livekit-server/cmd/server",
    version="v1.13.5",
)


LIVEKIT_SIP = GoBinary(
    name="livekit-sip",
    package="github.com/livekit/sip/cmd/livekit-sip",
    # v1.11.0 and most tags are refused by the Go module proxy; v1.8.0 is served. The proxy
    # also refuses the module's version list, which ``go install`` asks for.
    version="v1.8.0",
    cgo=True,
    module="github.com/livekit/sip",
)


TOXIPROXY = GoBinary(
    name="toxiproxy-server",
    package="github.com/Shopify/toxiproxy/v2/cmd/server",
    version="v2.12.0",
)
"""Injects network faults between the stack's services (the fault tests, ``bench/faults.py``)."""


MINIO = GoBinary(
    name="minio",
    package="github.com/minio/minio",
    # MinIO's RELEASE.* tags are not semver; the Go module proxy serves pseudo-versions only
    version="v0.0.0-20260212201848-7aac2a2c5b7c",
)
"""An S3-compatible server: the recordings store's S3 tests run against it (a 150 MB binary;
its first build takes minutes)."""
TRAEFIK = GoBinary(
    name="traefik",
    package="github.com/traefik/traefik/v3/cmd/traefik",
    # the same version as infra/compose.yml's image; its go.mod has replace directives, which
    # ``go install`` refuses, hence the module build
    version="v3.6.12",
    module="github.com/traefik/traefik/v3",
)
"""Terminates TLS for ``stimm dev --public-host``: the console, the API and LiveKit's
signalling over HTTPS/WSS (``stimm/stack/https.py``)."""


class BinaryBuildError(RuntimeError):
    """``go install`` failed; the message carries the tail of its output."""


def cache_dir() -> Path:
    """Where built binaries live: ``$STIMM_CACHE_DIR/bin`` or ``<repo>/.cache/bin``."""
    base = os.environ.get("STIMM_CACHE_DIR")
    return (Path(base) if base else REPO_ROOT / ".cache") / "bin"


def ensure_binary(binary: GoBinary, console: Console | None = None) -> Path:
    """Return the path of ``binary``, building it with ``go install`` the first time.

    The cached file name carries the version, so bumping a pin rebuilds it.
    """
    target = cache_dir() / f"{binary.name}@{binary.version}"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise BinaryBuildError(f"building {binary.name} needs the Go toolchain on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix=f"{binary.name}-") as gobin:
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "1" if binary.cgo else "0"}
        spec = f"{binary.package}@{binary.version}"
        with console.status(
            f"Building {binary.name} {binary.version} (go install, first run only)"
        ):
            built = Path(gobin) / Path(binary.package).name
            if binary.module is None:
                _go(go, ["install", spec], env=env)
            else:
                _build_from_module(go, binary, built, env=env)
        tmp = target.with_suffix(".tmp")
        shutil.move(str(built), tmp)
        tmp.chmod(0o755)
        tmp.replace(target)
    logger.info("built %s %s at %s", binary.name, binary.version, target)
    return target


def _go(go: str, args: list[str], *, env: dict[str, str], cwd: str | None = None) -> str:
    proc = subprocess.run(
        [go, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BinaryBuildError(f"go {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _build_from_module(go: str, binary: GoBinary, out: Path, *, env: dict[str, str]) -> None:
    """``go build`` the package inside its module, at the module's own pinned dependencies."""
    assert binary.module is not None
    info = json.loads(
        _go(go, ["mod", "download", "-json", f"{binary.module}@{binary.version}"], env=env)
    )
    subdir = binary.package.removeprefix(binary.module).lstrip("/")
    _go(go, ["build", "-o", str(out), f"./{subdir}"], env=env, cwd=info["Dir"])
