"""The public surface is complete, sorted and importable."""

from __future__ import annotations

import huledu_forensics


def test_all_is_sorted_and_importable() -> None:
    names = huledu_forensics.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(huledu_forensics, name), name


def test_investigate_is_public() -> None:
    assert callable(huledu_forensics.investigate)
