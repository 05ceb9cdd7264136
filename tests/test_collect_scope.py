"""Live collection and replay share one scope rule (:class:`huledu_forensics.scope.ScopeWalk`): the scope a
snapshot discovers against the live databases and logs is the scope the investigation discovers again
from the written bundle, id for id, batch included (rows refused live are not in the bundle, so replay can
only name fewer other batches)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import make_url

from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.collect import snapshot
from huledu_forensics.errors import ScopeError
from huledu_forensics.investigation import investigate
from huledu_forensics.scope import Scope, ScopeWalk, build_index
from huledu_forensics.world import load_world_dir
from tests.support.corpus import CORPUS_DIR
from tests.support.pg_world import load_world_into_postgres, profile_for

pytestmark = pytest.mark.postgres

WORLD = CORPUS_DIR / "seed-variant-a"
BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
REG_CORRELATION = "9437fe03-1195-4241-b532-91d36df0b1c2"
ESSAY = "62431c17-f141-444a-b709-6c08e7c6eff2"
ELS = "huleedu_essay_lifecycle"


def _share_registration_correlation(dsns: dict[str, str]) -> None:
    """Add a row of another batch that carries the target's registration correlation id."""
    admin = make_url(dsns[ELS]).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("INSERT INTO batch_pending_content (batch_id, text_storage_id, content_metadata) "
                     "VALUES ('other-batch', 'other-storage', %s::jsonb)",
                     (f'{{"correlation_id": "{REG_CORRELATION}"}}',))


@pytest.mark.parametrize("requested", [BATCH, REG_CORRELATION, ESSAY])
def test_live_collection_and_replay_discover_the_same_scope(requested: str, make_pg_database: Callable[..., str],
                                                            tmp_path: Path) -> None:
    dsns = load_world_into_postgres(load_world_dir(str(WORLD)), make_pg_database)
    shared = requested != REG_CORRELATION  # asked for, a shared correlation id is refused (test below)
    if shared:
        _share_registration_correlation(dsns)
    bundle = snapshot(profile_for(dsns, logs_dir=WORLD / "logs"), requested, tmp_path / "b", progress=False)
    live = bundle.manifest["scope"]
    replay = investigate(bundle, requested).scope

    assert live["batch_id"] == replay.batch_id == BATCH
    if shared:  # the row about the other batch was refused live, so the bundle (and its replay) never holds it
        assert set(live["other_batches"]) == {"other-batch"} and replay.other_batches <= {"other-batch"}
    live_ids = set().union(*map(set, live["ids"].values())) | {requested}
    assert live_ids == replay.all_ids
    assert "other-storage" not in replay.all_ids


def test_live_collection_refuses_a_correlation_id_two_batches_carry(make_pg_database: Callable[..., str],
                                                                    tmp_path: Path) -> None:
    """The registration correlation id asked for, while a row of another batch carries it too: live
    collection refuses with the bundle path's one-line error naming both batches, and writes no bundle."""
    dsns = load_world_into_postgres(load_world_dir(str(WORLD)), make_pg_database)
    _share_registration_correlation(dsns)
    with pytest.raises(ScopeError) as live:
        snapshot(profile_for(dsns, logs_dir=WORLD / "logs"), REG_CORRELATION, tmp_path / "b", progress=False)
    assert str(live.value) == (f"'{REG_CORRELATION}' (correlation id) belongs to 2 batches: {BATCH}, "
                               "other-batch. Pass one of those batch ids.")
    assert not (tmp_path / "b").exists()
    # the bundle path, given the same rows (the world plus the other batch's row), says the same
    world = load_world_dir(str(WORLD))
    pending = world.databases[ELS].tables["batch_pending_content"]
    row = {c: None for c in pending.columns} | {"batch_id": "other-batch", "text_storage_id": "other-storage",
                                                "content_metadata": f'{{"correlation_id": "{REG_CORRELATION}"}}'}
    world.databases[ELS].tables["batch_pending_content"] = pd.concat([pending, pd.DataFrame([row])],
                                                                     ignore_index=True)
    with pytest.raises(ScopeError) as replay:
        investigate(write_world_bundle(world, tmp_path / "w"), REG_CORRELATION)
    assert str(replay.value) == str(live.value)


def test_the_walk_refuses_items_about_another_batch_once_the_batch_is_known() -> None:
    walk = ScopeWalk("corr-1")
    assert walk.admit([("correlation", "corr-1"), ("essay", "e1")]) == [("correlation", "corr-1"), ("essay", "e1")]
    assert walk.admit([("batch", "b2"), ("batch", "b1"), ("correlation", "corr-1")]) is not None
    assert walk.batch == "b1" and walk.other_batches == {"b2"}  # the smallest id when one item names two
    assert walk.admit([("batch", "b3"), ("essay", "e9"), ("correlation", "corr-1")]) is None
    assert "e9" not in walk.all_ids() and walk.other_batches == {"b2", "b3"}
    assert walk.admit([("correlation", "b3"), ("essay", "e1")]) == []  # a known other batch is never followed
    assert walk.admit([("batch", "b1"), ("essay", "e2")]) == [("essay", "e2")]


def test_a_scope_holds_the_items_the_walk_would_admit() -> None:
    """investigation's scoped tables use this decision: a row naming a scope id is held unless it names
    batches, none of them the scope's (the walk's refusal), whether or not that batch was seen before."""
    scope = Scope("corr-1", "correlation", "b1", {"batch": {"b1"}, "correlation": {"corr-1"}, "essay": {"e1"}},
                  other_batches={"b2"})
    assert scope.holds([("essay", "e1")]) and scope.holds([("batch", "b1"), ("batch", "b2"), ("essay", "e9")])
    assert not scope.holds([("batch", "b2"), ("correlation", "corr-1")])
    assert not scope.holds([("batch", "b3"), ("correlation", "corr-1")])  # an unseen other batch too
    assert not scope.holds([("essay", "e9")])  # nothing of the scope
    assert not scope.holds([("essay", "e1")], among={"e9"})


def test_the_walk_refuses_a_requested_id_items_of_two_batches_name() -> None:
    walk = ScopeWalk("corr-1")
    walk.admit([("batch", "b1"), ("correlation", "corr-1")])
    walk.admit([("batch", "e5"), ("correlation", "corr-1")])  # an essay-level row whose aggregate reads as a batch
    with pytest.raises(ScopeError, match="b1, e5"):
        walk.refuse_shared("CORR-1")
    walk.admit([("batch", "b1"), ("essay", "e5")])  # an item names e5 an essay: not an owner
    walk.refuse_shared("CORR-1")
    walk.admit([("batch", "b2"), ("correlation", "corr-1")])
    with pytest.raises(ScopeError, match=r"^'CORR-1' \(correlation id\) belongs to 2 batches: b1, b2\. Pass one"):
        walk.refuse_shared("CORR-1")
    batch_walk = ScopeWalk("b1", batch="b1")
    batch_walk.kind_of["b1"] = "batch"
    batch_walk.admit([("batch", "b2"), ("correlation", "b1")])
    batch_walk.refuse_shared("b1")  # a batch id names its batch, whatever else carries it


def test_investigation_scopes_table_rows_by_the_walks_rule() -> None:
    """A row carrying the scope's correlation id but naming a batch discovery never met is refused, as
    the walk refuses it (the former second row filter kept it, since that batch was not recorded)."""
    from huledu_forensics.investigation import _scope_tables

    scope = Scope(REG_CORRELATION, "correlation", BATCH, {"batch": {BATCH}, "correlation": {REG_CORRELATION}},
                  other_batches={"b2"})
    meta = f'{{"correlation_id": "{REG_CORRELATION}"}}'
    rows = pd.DataFrame({"batch_id": [BATCH, "b3", "b2", "b4"], "text_storage_id": ["t1", "t3", "t2", "t4"],
                         "content_metadata": [meta, meta, meta, "{}"]})
    tables = {(ELS, "batch_pending_content"): rows}
    got = _scope_tables(tables, scope, build_index(tables))[(ELS, "batch_pending_content")]
    assert got["batch_id"].tolist() == [BATCH]
