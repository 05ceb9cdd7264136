"""Log-format facts: logger-name routing and key messages (SYSTEM.md §5). Owned by the log parser."""

from __future__ import annotations

__all__: list[str] = []
