"""Small DataFrame helpers shared across the kit."""

from __future__ import annotations

import numpy as np
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
    """Rows as dicts with missing values (NaN, NaT, pd.NA) as ``None``.

    The values are those of ``df.to_dict("records")`` (Python scalars, :class:`pandas.Timestamp`),
    read column-block-wise through one ``to_numpy(dtype=object)``: ``to_dict`` builds a Series per
    column and iterates it, a few milliseconds per call on the kit's 30-column log frames.
    """
    cols: list[str] = df.columns.tolist()  # the code's frames have str column names
    out = []
    for values in df.to_numpy(dtype=object).tolist():
        row = dict(zip(cols, values))
        for k, v in row.items():
            if v is None:
                continue
            if isinstance(v, np.generic):  # a NumPy scalar inside an object column: box it as to_dict does
                v = row[k] = pd.Timestamp(v) if isinstance(v, np.datetime64) else (
                    pd.Timedelta(v) if isinstance(v, np.timedelta64) else v.item())
            if is_missing(v):
                row[k] = None
        out.append(row)
    return out
