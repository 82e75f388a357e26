"""The relationship stage: status, status history, loyalty, cohorts, satisfaction, profitability, profiles, RFM cells, value tiers, segments and their backtests, and the Spark status path.

May import value, people, data and the kernel (see docs/architecture.md).
"""
