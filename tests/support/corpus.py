"""Bundles of the reference corpus (shared/corpus), built once per test process.

The corpus worlds were produced outside the project, so tests on them check the kit against data it
did not generate. ``SHARED`` is found next to the checkout (``../shared``) or via
``$HULEDU_SHARED_DIR``.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.world import load_world_dir
from tests.support.env import unavailable

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared/ directory, or ``None`` when this checkout has none beside it."""
    for cand in (os.environ.get("HULEDU_SHARED_DIR"), ROOT.parent / "shared", ROOT / "shared",
                 Path("/work/shared")):
        if cand and (Path(cand) / "corpus").is_dir():
            return Path(cand)
    return None


CORPUS_DIR: Path = (shared_dir() or ROOT.parent / "shared") / "corpus"
"""shared/corpus as :func:`shared_dir` finds it (else where it belongs, beside the checkout)."""


def require_corpus(world: str | None = None) -> Path:
    """``CORPUS_DIR`` (or one world in it); skips the test, or fails it under CI, when it is absent."""
    path = CORPUS_DIR / world if world else CORPUS_DIR
    if not path.is_dir():
        unavailable(f"{path} is not there: shared/corpus must be beside the checkout (or set HULEDU_SHARED_DIR)")
    return path


# The target batch of each corpus world and what the kit must conclude about it.
CORPUS_TARGETS = {
    "seed-variant-a": ("278f7fd9-37fe-406a-a735-f15128cb6b1f", "awaiting_content_validation",
                       "huleedu.batch.content.provisioning.completed.v1", "enum.label_missing"),
    "outbox-poisoned": ("37e88dff-166c-4847-9701-a5b145a32fa6", "awaiting_content_validation",
                        "huleedu.batch.content.provisioning.completed.v1", "outbox.poisoned"),
    "validation-failure-never-completes": (
        "1f60ded5-5c8f-45f3-b6be-96a5c9cc4c66", "awaiting_content_validation",
        "huleedu.batch.content.provisioning.completed.v1", "validation.failures_block_completion"),
    "healthy-guest": ("4f9d465a-d9c0-4fb0-9443-bebd5635474f", "ready_for_pipeline_execution", None,
                      None),
    "healthy-regular": ("1da22e84", "ready_for_pipeline_execution", None, None),
}

_TMP = Path(tempfile.mkdtemp(prefix="hf-corpus-"))


@functools.cache
def corpus_bundle(world: str) -> Bundle:
    """The corpus world ``world`` as a bundle (skips the test when shared/ is absent)."""
    shared = shared_dir()
    if shared is None:
        unavailable("shared/corpus is not next to this checkout; set HULEDU_SHARED_DIR")
    w = load_world_dir(shared / "corpus" / world)
    return write_world_bundle(w, _TMP / world, origin={"kind": "corpus"})


def full_batch_id(world: str, prefix: str) -> str:
    """Expand a batch-id prefix to the full id in a corpus world."""
    b = corpus_bundle(world)
    batches = b.table("huleedu_batch_orchestrator", "batches")
    assert batches is not None
    ids = [i for i in batches["id"] if str(i).startswith(prefix)]
    assert len(ids) == 1, ids
    return str(ids[0])
