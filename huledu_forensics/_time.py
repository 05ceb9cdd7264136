"""Timestamps enter the kit as timezone-aware UTC, whatever shape they arrive in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pandas as pd

__all__ = ["parse_option_time", "parse_utc", "to_utc_series", "utcnow"]


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def parse_utc(value: object) -> datetime | None:
    """Parse a timestamp (ISO string, datetime, pandas Timestamp, epoch seconds) to aware UTC.

    Naive values are taken to be UTC (HuleEdu writes naive columns as UTC). ``None``, ``NaT`` and
    empty strings give ``None``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    if pd.isna(ts):  # NaT included
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    else:
        ts = ts.tz_convert("UTC")
    return ts.floor("us").to_pydatetime()  # datetime holds microseconds; drop nanoseconds explicitly


def to_utc_series(values: pd.Series) -> pd.Series:
    """Convert a column of timestamps (naive, aware or text) to ``datetime64[ns, UTC]``.

    Naive values are taken to be UTC. Unparseable values become ``NaT``.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return cast(pd.Series, values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"))
    out = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    try:
        return out.astype("datetime64[ns, UTC]")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):  # e.g. year 9999 or 0001: not a real time
        lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
        return out.where((out >= lo) & (out <= hi)).astype("datetime64[ns, UTC]")


def parse_option_time(value: object, option: str) -> datetime | None:
    """Parse a user-given time (``--since``/``--until``); ``None`` or empty gives ``None``.

    Raises:
        ConfigError: the value is not a time; the message shows an ISO 8601 example.
    """
    from .errors import ConfigError

    if value is None or value == "":
        return None
    t = parse_utc(value)
    if t is None:
        raise ConfigError(f"--{option} {value!r} is not a timestamp. Write ISO 8601 in UTC, e.g. "
                          "2025-11-20T18:40:00Z.")
    return t
