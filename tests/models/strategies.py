"""Hypothesis strategies shared by the models' property tests: valid customer histories and
parameter sets of the (r, alpha, a, b) family over wide ranges."""

from __future__ import annotations

from hypothesis import strategies as st

positive = st.floats(1e-3, 1e3)
param_st = st.tuples(positive, positive, st.floats(1e-2, 1e2), st.floats(1e-2, 1e2))
"""(r, alpha, a, b): rates and shapes from 1e-3 to 1e3, dropout shapes from 1e-2 to 1e2."""


@st.composite
def history(draw):
    """A valid (x, t_x, T): x in 0..10,000 repeat purchases, 0 <= t_x <= T <= 1e4, t_x = 0 when x = 0."""
    T = draw(st.floats(1e-2, 1e4))
    x = draw(st.integers(0, 10_000))
    tx = 0.0 if x == 0 else draw(st.floats(0.0, 1.0)) * T
    return float(x), tx, T
