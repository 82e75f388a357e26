#!/usr/bin/env bash
# Run lifetimes' own test suite against patron.compat.lifetimes, outside this repository.
#
#   scripts/lifetimes-suite.sh LIFETIMES_SOURCE [SCRATCH] [pytest args...]
#
# LIFETIMES_SOURCE: a checkout (or unpacked sdist) of lifetimes 0.11.3 holding tests/. Nothing is
# downloaded and nothing is copied into this repository: the tests are copied to SCRATCH (default
# a new temporary folder) with the one change current pandas needs (pandas.util.testing ->
# pandas.testing), beside a package `lifetimes` whose modules are patron.compat.lifetimes's
# (a module alias) and whose datasets/ folder links patron's bundled copies of lifetimes' data
# (some tests read lifetimes/datasets/*.csv by relative path). Uses this worktree's .venv.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:?usage: scripts/lifetimes-suite.sh LIFETIMES_SOURCE [SCRATCH] [pytest args...]}"
scratch="${2:-$(mktemp -d)}"
shift $(( $# >= 2 ? 2 : 1 ))
test -d "$src/tests" || { echo "no tests/ folder in $src" >&2; exit 2; }
mkdir -p "$scratch/lifetimes/datasets"
rm -rf "$scratch/tests"
cp -r "$src/tests" "$scratch/tests"
sed -i 's/pandas\.util\.testing/pandas.testing/g' "$scratch"/tests/*.py
for f in "$here"/src/patron/data/datasets/data/*.{csv,txt}; do ln -sf "$f" "$scratch/lifetimes/datasets/"; done
cat > "$scratch/lifetimes/__init__.py" <<'PY'
"""Module alias: `lifetimes` is patron.compat.lifetimes (for running lifetimes' tests)."""
import importlib
import sys

_ROOT = "patron.compat.lifetimes"
for _name in ("fitters", "fitters.beta_geo_fitter", "fitters.beta_geo_beta_binom_fitter",
              "fitters.gamma_gamma_fitter", "fitters.modified_beta_geo_fitter",
              "fitters.pareto_nbd_fitter", "utils", "plotting", "datasets", "generate_data", "version"):
    sys.modules["lifetimes." + _name] = importlib.import_module(f"{_ROOT}.{_name}")
sys.modules["lifetimes"] = importlib.import_module(_ROOT)
PY
cd "$scratch"
echo "lifetimes suite in $scratch" >&2
PYTHONPATH="$scratch" MPLBACKEND=Agg "$here/.venv/bin/python" -m pytest -p no:cacheprovider -q tests "$@"
