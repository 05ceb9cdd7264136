"""Test helpers shipped with the kit, usable by other projects' tests too.

:class:`~huledu_forensics.testing.fake_loki.FakeLoki` is a small in-memory Loki serving real HTTP.
"""

from __future__ import annotations

from .fake_loki import FakeLoki, LogQLError, ServedRequest, parse_logql

__all__ = ["FakeLoki", "LogQLError", "ServedRequest", "parse_logql"]
