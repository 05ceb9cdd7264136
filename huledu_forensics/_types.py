"""Distinct id types, so a batch id is never passed where a correlation id is meant."""

from __future__ import annotations

from typing import NewType

__all__ = [
    "BatchId",
    "CorrelationId",
    "EssayId",
    "EventId",
    "FileUploadId",
    "TextStorageId",
]

BatchId = NewType("BatchId", str)
CorrelationId = NewType("CorrelationId", str)
EssayId = NewType("EssayId", str)
TextStorageId = NewType("TextStorageId", str)
FileUploadId = NewType("FileUploadId", str)
EventId = NewType("EventId", str)
