"""_frames.records gives the rows rules and views read: the values of ``to_dict("records")``, missing as None."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from huledu_forensics._frames import records

T = pd.Timestamp("2024-01-01T10:00:00", tz="UTC")

CASES = {
    "int": ([1, 2], None, [1, 2]),
    "float with nan": ([1.5, np.nan], None, [1.5, None]),
    "bool": ([True, False], None, [True, False]),
    "aware timestamp": ([T, pd.NaT], None, [T, None]),
    "nullable int": ([1, None], "Int64", [1, None]),
    "nullable boolean": ([True, None], "boolean", [True, None]),
    "str": (["x", None], None, ["x", None]),
    "timedelta": (pd.to_timedelta([1, None], unit="s"), None, [pd.Timedelta(seconds=1), None]),
    "numpy scalars in object": ([np.int64(3), np.datetime64("2024-01-01T10:00:00")], object,
                                [3, pd.Timestamp("2024-01-01T10:00:00")]),
    "containers stay values": ([[1, None], {"k": None}], None, [[1, None], {"k": None}]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_records_values_and_types(name: str) -> None:
    values, dtype, expected = CASES[name]
    df = pd.DataFrame({"a": pd.array(values, dtype=dtype) if dtype else values, "n": [7, 8]})
    rows = records(df)
    assert [r["a"] for r in rows] == expected
    assert [type(r["a"]) for r in rows] == [type(v) for v in expected]
    assert [r["n"] for r in rows] == [7, 8] and all(type(r["n"]) is int for r in rows)


def test_records_match_to_dict_on_a_mixed_frame() -> None:
    df = pd.DataFrame({"ts": [T, pd.NaT], "s": ["a", None], "i": pd.array([1, None], dtype="Int64"),
                       "o": [{"x": 1}, None]})
    expected = [{k: (None if v is None or (not isinstance(v, dict) and pd.isna(v)) else v)
                 for k, v in row.items()} for row in df.to_dict("records")]
    assert records(df) == expected
    assert records(df.iloc[0:0]) == []
    assert records(pd.DataFrame(index=[0, 1])) == [{}, {}]
