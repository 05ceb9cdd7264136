"""Timestamps enter the kit as timezone-aware UTC, whatever shape they arrive in."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

__all__ = ["parse_utc", "to_utc_series", "utcnow"]


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def parse_utc(value: object) -> datetime | None:
    """Parse a timestamp (ISO string, datetime, pandas Timestamp, epoch seconds) to aware UTC.

    Naive values are taken to be UTC (HuleEdu writes naive columns as UTC). ``None``, ``NaT`` and
    empty strings give ``None``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT or pd.isna(ts):
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
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    out = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    return out.astype("datetime64[ns, UTC]")
