#!/usr/bin/env bash
# Creates (or refreshes) the project's virtualenv outside the repo, idempotently.
# The venv is rebuilt only when pyproject.toml changes; pip's own cache makes a rebuild cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SHOPSTREAM_CACHE_DIR:-$HOME/.cache/shopstream}"
VENV="${SHOPSTREAM_VENV:-$CACHE/venv}"
PYTHON="${PYTHON:-python3.11}"
STAMP="$VENV/.shopstream-stamp"

# System packages: PostgreSQL's server binaries, a JDK, Maven and Go (for FerretDB).
need=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || command -v postgres >/dev/null || need+=(postgresql)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v mongod >/dev/null || command -v go >/dev/null || need+=(golang)
command -v mongod >/dev/null || command -v patch >/dev/null || need+=(patch)
# The dashboard's browser test (make test) drives Debian's headless chromium.
browser=()
[[ "${SHOPSTREAM_TEST_BROWSER:-}" == 1 ]] && ! command -v chromium >/dev/null && browser+=(chromium)
if ((${#need[@]})); then
  echo "==> installing system packages: ${need[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "   (needs root: run 'sudo apt-get install ${need[*]}' and retry)" >&2
    exit 1
  fi
  # policy-rc.d keeps apt from starting the distribution's own PostgreSQL cluster.
  ours=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ours=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  [[ -n "$ours" ]] && rm -f /usr/sbin/policy-rc.d
fi
if ((${#browser[@]})); then
  echo "==> installing the test browser: ${browser[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "   (needs root: run 'sudo apt-get install --no-install-recommends chromium' and retry)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${browser[@]}"
fi

command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "shopstream needs Python 3.11; found $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$ROOT"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/shopstream" ]]; then
  exit 0
fi

echo "==> preparing the Python environment in $VENV"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
echo "$want" > "$STAMP"
