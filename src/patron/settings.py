"""Settings read from the environment (prefix ``PATRON_``), declared once with defaults and help.

Command-line options override these. Example: ``PATRON_DB=/data/shop.duckdb patron summary``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from patron.constants import DEFAULT_DATE_FLOOR, DEFAULT_DB, DEFAULT_FUTURE_TOLERANCE_HOURS
from patron.errors import InputError


class Settings(BaseSettings):
    """patron's settings; each field can be set as an environment variable ``PATRON_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

    db: str = Field(DEFAULT_DB, description="DuckDB database file.")
    future_tolerance_hours: float = Field(
        DEFAULT_FUTURE_TOLERANCE_HOURS,
        ge=0,
        description="Timestamps later than now plus this many hours are rejected at ingest.",
    )
    date_floor: date = Field(
        DEFAULT_DATE_FLOOR,
        description="Timestamps before this date (YYYY-MM-DD) are rejected at ingest and by the service.",
    )
    memory_limit: str | None = Field(
        None, description="DuckDB memory limit, e.g. '4GB' (default: DuckDB's own, 80% of RAM)."
    )
    threads: int | None = Field(None, ge=1, description="DuckDB worker threads (default: all cores).")
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Engine for summaries: embedded DuckDB, or Apache Spark (local or a cluster)."
    )
    csv_safe: bool = Field(
        True,
        description="Neutralise CSV cells a spreadsheet would run as formulas (=, +, -, @, tab, CR first) "
        "with a leading apostrophe; false writes them raw (as `patron --csv-raw`).",
    )
    spark_master: str | None = Field(
        None, description="Spark master URL, e.g. local[4] or spark://host:7077 (default: local[2], or spark-submit's)."
    )


def get_settings() -> Settings:
    """Settings as the environment gives them now (read on every call, never cached at import).
    A value that does not validate is an :class:`~patron.errors.InputError` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PATRON_" + str(first["loc"][0]).upper() if first["loc"] else "a PATRON_ setting"
        raise InputError(f"{name}={first.get('input')!r}: {first['msg']}") from None
