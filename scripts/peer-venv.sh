#!/usr/bin/env bash
# Create .venv-lifetimes beside the project's .venv, holding the peer library `lifetimes` 0.11.3
# with the known-good pins in ../shared/peers/requirements-lifetimes.txt (see its README).
# The benchmarks run lifetimes there, in its own interpreter, on the same data as patron.
#
# Idempotent: a stamp file records the SHA-256 of the pins; when they are unchanged and the venv
# imports lifetimes, nothing is done. Installs only from the package index (pip's default).
#
# Usage: scripts/peer-venv.sh            (env: PYTHON=python3.11, PEER_PINS=path/to/requirements)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
PINS="${PEER_PINS:-$ROOT/../shared/peers/requirements-lifetimes.txt}"
VENV="$ROOT/.venv-lifetimes"
STAMP="$VENV/.pins.sha256"

if [[ ! -f "$PINS" ]]; then
  echo "peer-venv: pins file not found: $PINS (set PEER_PINS)" >&2
  exit 1
fi
want="$(sha256sum "$PINS" | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
   && "$VENV/bin/python" -c "import lifetimes, pyarrow" 2>/dev/null; then
  echo "peer-venv: $VENV is up to date"
  exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$PINS"
"$VENV/bin/python" - <<'PY'
import lifetimes
import numpy
import pandas
import pyarrow
print(f"peer-venv: lifetimes {lifetimes.__version__}, numpy {numpy.__version__}, "
      f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}")
PY
echo "$want" > "$STAMP"
