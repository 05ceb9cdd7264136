"""What the test environment has, and the one rule for what it lacks."""

from __future__ import annotations

import os

import pytest

__all__ = ["IN_CI", "unavailable"]

IN_CI = os.environ.get("CI", "").lower() == "true"
"""CI must run every test: there a missing component fails the test instead of skipping it."""


def unavailable(message: str) -> None:
    """Skip the test with a one-line reason, or fail it under ``CI=true`` (where nothing may skip)."""
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
