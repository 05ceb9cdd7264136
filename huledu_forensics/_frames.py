"""Small DataFrame helpers shared across the kit."""

from __future__ import annotations

from typing import cast

import pandas as pd

__all__ = ["records"]


def is_missing(value: object) -> bool:
    """Whether a cell is missing (None, NaN, NaT, pd.NA): :func:`pandas.isna` for one value of any type.

    A container (list, array, dict) is a value, never missing (``pandas.isna`` would answer per item).
    """
    if value is None:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]  # stubs: isna rejects `object`; pandas takes any
    except (TypeError, ValueError):
        return False


def records(df: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as dicts with missing values (NaN, NaT, pd.NA) as ``None``."""
    out = cast(list[dict[str, object]], df.to_dict("records"))  # the code's frames have str column names
    for row in out:
        for k, v in row.items():
            if v is not None and is_missing(v):
                row[k] = None
    return out
