"""Go-built LiveKit binaries, pinned and cached under a git-ignored folder."""

from __future__ import annotations

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


LIVEKIT_SERVER = GoBinary(
    name="livekit-server",
    package="github.com/livekit/livekit-server/cmd/server",
    version="v1.13.5",
)


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
            proc = subprocess.run(
                [go, "install", spec], env=env, capture_output=True, text=True, check=False
            )
        if proc.returncode != 0:
            raise BinaryBuildError(f"go install {spec} failed:\n{proc.stderr[-4000:]}")
        built = Path(gobin) / Path(binary.package).name
        tmp = target.with_suffix(".tmp")
        shutil.move(str(built), tmp)
        tmp.chmod(0o755)
        tmp.replace(target)
    logger.info("built %s %s at %s", binary.name, binary.version, target)
    return target
