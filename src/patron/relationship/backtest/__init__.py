"""Backtests: what patron's labels said about customers on a past date, against what those
customers did next.

* :func:`status_backtest`: relationship statuses (``patron backtest status``);
* :func:`segment_backtest`: segments and named RFM cells (``patron backtest segments``).

Both fit every model on the history up to the past date only, follow the customers over a horizon
(cut at the end of the data), and report shares and means with intervals (:mod:`patron.relationship.backtest.outcomes`).
"""

from patron.relationship.backtest.outcomes import (
    Backtest,
    Window,
    check_horizon,
    group_outcomes,
    horizon_end,
    observed_window,
    outcomes,
)
from patron.relationship.backtest.status import status_backtest, status_checks

__all__ = [
    "Backtest", "Window", "check_horizon", "group_outcomes", "horizon_end", "observed_window", "outcomes", "status_backtest",
    "status_checks",
]
