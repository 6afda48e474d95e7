#!/usr/bin/env bash
# Install everything Stimm needs on a fresh Debian machine: system packages, the Python
# environment (.venv) and the Go-built LiveKit binaries (cached under .cache/bin).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql redis-server)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! pg_lsclusters -h | grep -q .; then
  echo "==> creating a PostgreSQL cluster"
  pg_createcluster "$(ls /usr/lib/postgresql | sort -n | tail -1)" main >/dev/null
fi

export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "Go is required to build livekit-server (https://go.dev/dl)"; exit 1; }

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
stamp=.venv/.stimm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> pip install -e .[dev]"
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi

echo "==> LiveKit binaries"
.venv/bin/stimm setup
