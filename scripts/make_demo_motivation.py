"""Write the demo's motivation data (src/patron/data/datasets/data/demo_*.csv) from the CDNOW sample.

Motivations are planted on the real CDNOW customers and orders by
patron.relationship.motivation_simulate.demo_overlay with its fixed seed (DEMO_SEED); the files are
documented in src/patron/data/datasets/data/README.md. Running this again writes the same bytes
(tests/test_motivation_demo.py checks it). Prints how many customers of each planted motivation
``patron.relationship.motivation`` finds as what, on the demo database.

Usage: .venv/bin/python scripts/make_demo_motivation.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from patron.relationship.motivation_simulate import demo_files

if __name__ == "__main__":
    from patron.data.datasets import data_path

    folder = data_path("CDNOW_sample.txt").parent
    files, truth = demo_files()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(text):,} bytes, {text.count(chr(10)) - 1:,} rows")
    from patron.cli.demo import ingest_motivation_data
    from patron.data.ingest import ingest
    from patron.relationship.motivation import motivations
    from patron.relationship.motivation_simulate import confusion

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "demo.duckdb")
        ingest(folder / "demo_transactions.csv", kind="transactions", db=db)
        ingest_motivation_data(db)
        print(confusion(truth, motivations(db)).to_string())
