"""Every error of the kit derives from ForensicsError and survives a pickle round trip."""

from __future__ import annotations

import pickle

import pytest

from huledu_forensics import errors


@pytest.mark.parametrize("name", errors.__all__)
def test_pickle_round_trip(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.ForensicsError)
    exc = cls("something happened. Do this next.")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)


def test_context_attributes_survive() -> None:
    exc = errors.ReportError("cell failed", notebook="nb.ipynb", cell_index=3)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.notebook, back.cell_index) == ("nb.ipynb", 3)
    assert pickle.loads(pickle.dumps(errors.BundleInvalid("x", path="/b"))).path == "/b"
