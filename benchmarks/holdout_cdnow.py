"""Holdout forecast error on CDNOW, patron beside lifetimes, on the same calibration/holdout split.

Calibration 1997-01-01 to 1997-09-30 (39 weeks), holdout to 1998-06-30 (39 weeks), the bundled
CDNOW sample (2,357 customers). For BG/NBD, Pareto/NBD and MBG/NBD: the per-customer mean absolute
error (MAE) and root mean squared error of predicted vs actual holdout purchases. lifetimes runs in
.venv-lifetimes (scripts/peer-venv.sh) on the very summary patron computed.

Usage: .venv/bin/python benchmarks/holdout_cdnow.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import patron
from patron.data.datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, load_cdnow
from patron.value.evaluation import holdout_comparison
from patron.value.scoring import fit_model

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PEER_PYTHON = HERE.parent / ".venv-lifetimes" / "bin" / "python"
MODELS = ("bgnbd", "pareto", "mbgnbd")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    summary = patron.summary(load_cdnow(), period="W", end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END)
    path = OUT / "cdnow_holdout_summary.parquet"
    summary.to_parquet(path)
    ours = {}
    for name in MODELS:
        model = fit_model(name, summary)
        comp = holdout_comparison(model, summary)
        ours[name] = {"params": model.params_, "log_likelihood": model.log_likelihood_, "mae": comp.mae, "rmse": comp.rmse}
    theirs = None
    if PEER_PYTHON.exists():
        proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_lifetimes_holdout.py"), str(path)], capture_output=True, text=True, timeout=1800)
        theirs = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {"error": proc.stderr.strip().splitlines()[-1:]}
    else:
        print(f"lifetimes not installed ({PEER_PYTHON} missing): run scripts/peer-venv.sh", file=sys.stderr)
    print(f"CDNOW holdout ({len(summary):,} customers, actual holdout purchases {int(summary['frequency_holdout'].sum()):,})")
    print(f"{'model':8} {'patron MAE':>11} {'lifetimes MAE':>14} {'patron RMSE':>12} {'lifetimes RMSE':>15}")
    for name in MODELS:
        t = (theirs or {}).get(name, {})
        print(f"{name:8} {ours[name]['mae']:11.5f} {t.get('mae', float('nan')):14.5f} {ours[name]['rmse']:12.5f} {t.get('rmse', float('nan')):15.5f}")
    (OUT / "holdout_cdnow.json").write_text(json.dumps({"patron": ours, "lifetimes": theirs}, indent=2, default=float))


if __name__ == "__main__":
    main()
