"""The kit's own field names that happen to equal HuleEdu column names.

The kit's frames and documents (the log and timeline frames, the overview and scan frames, verdict.json,
the bundle manifest, the pytest plugin's ``register`` arguments) key an id by these names. They are the
kit's format, which its users and saved bundles rely on, so they do not follow HuleEdu: when HuleEdu
renames a column, :mod:`.model.columns` changes and these stay. Code reading a HuleEdu row uses
``model.columns``; code reading a kit frame or document uses this module. It is the one module outside
``model/`` that the boundary test lets spell these names (tests/test_model_boundary.py).
"""

from __future__ import annotations

BATCH_ID = "batch_id"
CORRELATION_ID = "correlation_id"
ESSAY_ID = "essay_id"
TEXT_STORAGE_ID = "text_storage_id"
FILE_UPLOAD_ID = "file_upload_id"
CREATED_AT = "created_at"  # a bundle manifest's creation time
EVENT_TYPE = "event_type"  # a log line's event type (also the name of an outbox column)
PUBLISHED_AT = "published_at"  # when the awaited event was relayed to Kafka (progress.AwaitedTransition)

# The typed ids a log line (and the timeline row made from it) carries, in the kit's order.
ID_FIELDS = (BATCH_ID, CORRELATION_ID, ESSAY_ID, TEXT_STORAGE_ID, FILE_UPLOAD_ID)

__all__ = sorted(n for n in dir() if n.isupper() and not n.startswith("_"))
