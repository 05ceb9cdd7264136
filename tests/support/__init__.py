"""Helpers shared by the tests (import as ``tests.support.<module>``; conftest puts the repo on sys.path)."""

from __future__ import annotations

__all__: list[str] = []
