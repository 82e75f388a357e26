"""docs/migrating-from-lifetimes.md: its code runs (the compat blocks in one namespace, the
native ones in another), gives the same answers both ways, and every public name of
patron.compat.lifetimes is in lifetimes' layout."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-lifetimes.md"


def _blocks(kind: str) -> list[str]:
    code = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [b for b in code if b.startswith(f"# {kind}\n") or b.startswith(f"# {kind}:")]


@pytest.fixture(scope="module")
def ran():
    from matplotlib import pyplot as plt

    spaces = {}
    for kind in ("patron.compat.lifetimes", "patron"):
        ns: dict = {}
        for block in _blocks(kind):
            exec(compile(block, f"guide ({kind})", "exec"), ns)
        spaces[kind] = ns
    plt.close("all")
    return spaces


def test_the_guide_has_both_versions_of_each_step():
    assert len(_blocks("patron.compat.lifetimes")) == len(_blocks("patron")) == 5


def test_both_apis_give_the_same_answers(ran):
    compat, native = ran["patron.compat.lifetimes"], ran["patron"]
    top = compat["data"].sort_values("predicted_purchases").tail(5)
    assert list(top.index) == list(native["data"].sort_values("predicted_purchases").tail(5).index) == [509, 841, 1981, 157, 1516]
    np.testing.assert_allclose(top["predicted_purchases"], native["data"].loc[top.index, "predicted_purchases"], rtol=1e-12)
    assert np.asarray(native["clv"]).shape == (2357,) and np.all(np.isfinite(native["clv"]))
    assert native["intervals"] is not None


def test_speed_table_quotes_the_benchmark_command():
    text = GUIDE.read_text()
    assert "benchmarks/bench_lifetimes_compat.py" in text and "scripts/lifetimes-suite.sh" in text
