"""The value stage: per-customer summaries, the buy-till-you-die and spend models, CLV and customer equity, covariates, forecast evaluation, simulation, model plots, and their Spark paths.

May import the data stage and the kernel (see docs/architecture.md).
"""
