"""The named scenarios: which batches a world holds, in which modes, with which database enums."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import model
from ..model import names as N
from ..world import World
from .builder import BOS_DB, ELS_DB, T_COMPLETED, T_REGISTERED, Batch, FileSpec, Sim, ms

__all__ = ["EXPECTED", "SCENARIOS", "ExpectedVerdict", "build"]

SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
SEED_REG_CORR = "9437fe03-1195-4241-b532-91d36df0b1c2"
SEED_PIPE_CORR = "7242c19e-039b-43d3-b37f-b144133706c9"
SEED_ESSAYS = ["62431c17-f141-444a-b709-6c08e7c6eff2", "fc35b304-58eb-44b6-936a-789055876b56"]
SEED_TSIDS = ["cf3ea970ffc94727b79cdb6051f76e6a", "b2f1d444e90243fc8a79c2285242c352"]
SEED_EVENT_IDS = ["995af3ca-9792-4289-b9f5-30a99d17f3ac", "ae052486-f25f-4f38-b9f8-84a4e8fec939"]
SEED_REG_AT = datetime(2025, 11, 20, 18, 41, 50, 56091, tzinfo=UTC)
SEED_PIPE_AT = datetime(2025, 11, 20, 18, 41, 59, 283595, tzinfo=UTC)
SEED_COLLECTED = datetime(2025, 11, 20, 18, 42, 26, 412000, tzinfo=UTC)

SCENARIOS: dict[str, str] = {
    "healthy_guest": "A GUEST batch that runs through a finished spellcheck + cj_assessment pipeline.",
    "healthy_regular": "A REGULAR batch through student validation and a finished spellcheck + cj_assessment "
                       "pipeline.",
    "seed_variant_a": "The 2025-11-20 stuck guest batch: ELS essay_status_enum lacks 'uploaded'; tracker "
                      "committed, no essay rows, content left pending.",
    "seed_variant_b": "As seed_variant_a on post-9f693272 code: the registration rolls back fully (no "
                      "tracker, no slots); content left pending.",
    "outbox_poisoned": "ELS wrote BatchContentProvisioningCompletedV1 to its outbox but the row hit the retry "
                       "limit and was never published.",
    "validation_failure": "Some files fail validation; their essay slots stay 'uploaded', so content "
                          "provisioning never completes.",
}



@dataclass(frozen=True)
class ExpectedVerdict:
    """What the kit must conclude about a scenario's target batch.

    :data:`EXPECTED` is the one place this is written: each world's ``expected`` block is built from it,
    and the tests hold the kit's verdict on each simulated world against it.
    """

    healthy: bool
    current_state: str
    """``batches.status`` of the target in BOS at collection time."""
    awaited_event: str | None
    """The topic the batch waits for (``None`` when healthy)."""
    root_cause: str | None
    """The id of the rule whose finding is the root cause (``None`` when healthy)."""


def _stuck_on(root: str) -> ExpectedVerdict:
    """A batch registered but never told its content is complete, because of ``root``."""
    return ExpectedVerdict(healthy=False, current_state=N.S_AWAITING_CONTENT, awaited_event=T_COMPLETED,
                           root_cause=root)


_HEALTHY = ExpectedVerdict(healthy=True, current_state=N.S_READY, awaited_event=None,
                           root_cause=None)

EXPECTED: dict[str, ExpectedVerdict] = {
    "healthy_guest": _HEALTHY,
    "healthy_regular": _HEALTHY,
    "seed_variant_a": _stuck_on("enum.label_missing"),
    "seed_variant_b": _stuck_on("enum.label_missing"),
    "outbox_poisoned": _stuck_on("outbox.poisoned"),
    "validation_failure": _stuck_on("validation.failures_block_completion"),
}
"""Scenario name → the verdict the kit must reach on its target batch."""

COURSES = ("ENG5", "ENG6", "SV1", "SV2")


def _enums(db: str, drifted: bool) -> dict[str, list[str]]:
    src = model.ALEMBIC_INITIAL_ENUMS if drifted else model.PYTHON_ENUMS
    return {name: list(src[(db, name)]) for name in model.DATABASES[db].enum_types}


def _sim(name: str, seed: int, start: datetime, drifted: bool) -> Sim:
    return Sim(name, seed, start, els_enums=_enums(ELS_DB, drifted), bos_enums=_enums(BOS_DB, drifted),
               alembic=drifted)


def _batch(sim: Sim, flow: str, t_reg: datetime, n: int, *, mode: str = "healthy", lead_s: float = 0.8,
           pipeline: str | None = None, n_fail: int = 0, prefix: str = "essay") -> Batch:
    rng = sim.rng
    user = f"test_user_{sim.hex32()[:8]}" if flow == "GUEST" else sim.uuid()
    files = []
    for i in range(n):
        tag = sim.hex32()[:6]
        files.append(FileSpec(file_upload_id=sim.uuid(), filename=f"{prefix}_{rng.randint(1, 99):02d}_{tag}.docx",
                              raw_id=sim.hex32(), text_storage_id=sim.hex32(), size=rng.randint(12000, 48000),
                              md5=sim.hex32(), row_id=sim.uuid(),
                              fails="EMPTY_CONTENT" if i >= n - n_fail else None))
    return Batch(id=sim.uuid(), reg_corr=sim.uuid(), flow=flow, essay_ids=[sim.uuid() for _ in range(n)],
                 files=files, user_id=user, org_id=None if flow == "GUEST" else sim.uuid(),
                 class_id=None if flow == "GUEST" else sim.uuid(), course_code=rng.choice(COURSES), t_reg=t_reg,
                 content_lead_s=lead_s, mode=mode, pipeline=pipeline, reg_trace=sim.hex32(),
                 pipe_delay_s=rng.uniform(1.5, 4.0))


def _background(sim: Sim, t_target: datetime, *, mode: str, pipelines: bool) -> list[Batch]:
    """3-5 other batches (GUEST and REGULAR) around the target; one starts just after it.

    In a drifted world (``mode`` ``enum_a``/``enum_b``) they meet the same enum rejection as the target, as
    every batch did in the incident; elsewhere they are healthy.
    """
    rng = sim.rng
    k = rng.randint(3, 5)
    flows = ["GUEST", "REGULAR"] + [rng.choice(["GUEST", "REGULAR"]) for _ in range(k - 2)]
    rng.shuffle(flows)
    out = []
    for i, flow in enumerate(flows):
        if i == 0:  # one right beside the target, so their lines interleave
            t = t_target + ms(rng.uniform(500, 3000))
        else:
            t = t_target + timedelta(seconds=rng.uniform(-45, 15))
        pipe = rng.choice(["cj_assessment", "spellcheck", None]) if pipelines else None
        lead = rng.choice([0.6, -1.2]) if mode == "healthy" else rng.uniform(0.3, 1.5)
        out.append(_batch(sim, flow, t, rng.randint(2, 5), mode=mode, lead_s=lead, pipeline=pipe))
    return out


def _expected(name: str, b: Batch, **more: Any) -> dict[str, Any]:
    """The world's ``expected`` block: the scenario's :data:`EXPECTED` verdict plus facts of this build."""
    return {"batch_id": b.id, "flow": b.flow, **asdict(EXPECTED[name]), "essay_count": len(b.essay_ids), **more}


def _target(b: Batch) -> dict[str, str]:
    return {"batch_id": b.id, "registration_correlation_id": b.reg_corr,
            "pipeline_correlation_id": b.pipe_corr or ""}


def _base_time(sim: Sim, day: int) -> datetime:
    return datetime(2025, 12, day, 9, 0, tzinfo=UTC) + timedelta(seconds=sim.rng.randint(0, 8 * 3600))


def _healthy(name: str, seed: int, flow: str) -> World:
    probe = _sim(name, seed, datetime(2025, 12, 1, tzinfo=UTC), False)
    t_reg = _base_time(probe, 2 + seed % 20)
    sim = _sim(name, seed, t_reg - timedelta(seconds=60), False)
    sim.rng = probe.rng
    tb = _batch(sim, flow, t_reg, sim.rng.randint(3, 4), lead_s=0.8 if flow == "GUEST" else -1.5,
                pipeline="cj_assessment")
    batches = [tb] + _background(sim, t_reg, mode="healthy", pipelines=True)
    sim.run_batches(batches)
    return sim.finish(end=t_reg + timedelta(seconds=90), description=SCENARIOS[name], target=_target(tb),
                      expected=_expected(name, tb), els_restart=True)


def _stuck(name: str, seed: int, mode: str) -> World:
    probe = _sim(name, seed, datetime(2025, 12, 1, tzinfo=UTC), False)
    t_reg = _base_time(probe, 3 + seed % 20)
    sim = _sim(name, seed, t_reg - timedelta(seconds=60), False)
    sim.rng = probe.rng
    n = sim.rng.randint(3, 5) if mode == "vfail" else sim.rng.randint(2, 4)
    tb = _batch(sim, "GUEST", t_reg, n, mode=mode, lead_s=-1.2 if mode == "vfail" else 0.7,
                pipeline="cj_assessment", n_fail=sim.rng.randint(1, 2) if mode == "vfail" else 0)
    tb.pipe_corr = sim.uuid()
    tb.t_pipe = t_reg + timedelta(seconds=sim.rng.uniform(14, 22))
    batches = [tb] + _background(sim, t_reg, mode="healthy", pipelines=True)
    sim.run_batches(batches)
    more: dict[str, Any] = {}
    if mode == "vfail":
        more["failed_files"] = sum(1 for f in tb.files if f.fails)
    return sim.finish(end=t_reg + timedelta(seconds=95), description=SCENARIOS[name], target=_target(tb),
                      expected=_expected(name, tb, **more))


def _seed_a(name: str, seed: int) -> World:
    sim = _sim(name, seed, datetime(2025, 11, 20, 18, 40, 21, 318000, tzinfo=UTC), True)
    sim.kafka_offsets[f"{T_REGISTERED}:2"] = 12
    files = [FileSpec(file_upload_id=sim.uuid(), filename=f"ENG5_NP_2016_student_essay_0{i + 1}.docx",
                      raw_id=sim.hex32(), text_storage_id=SEED_TSIDS[i], size=sim.rng.randint(15000, 40000),
                      md5=sim.hex32(), row_id=sim.uuid(), event_id=SEED_EVENT_IDS[i]) for i in range(2)]
    tb = Batch(id=SEED_BATCH, reg_corr=SEED_REG_CORR, flow="GUEST", essay_ids=list(SEED_ESSAYS), files=files,
               user_id="test_identity_user", org_id="test_org_123", class_id=None, course_code="ENG5",
               t_reg=SEED_REG_AT, content_lead_s=-0.247, mode="enum_a", pipeline="cj_assessment",
               pipe_corr=SEED_PIPE_CORR, t_pipe=SEED_PIPE_AT, bos_relay_delay_ms=930.0,
               reg_trace="ecb1cd56e4ed4972bf5c433fe653265d", registered_offset=(2, 12), pg_pid=65)
    sim.pg_pids[ELS_DB] = [47, 65, 98]
    batches = [tb] + _background(sim, SEED_REG_AT, mode="enum_a", pipelines=False)
    sim.run_batches(batches)
    return sim.finish(end=SEED_COLLECTED, description=SCENARIOS[name], target=_target(tb),
                      expected=_expected(name, tb, pending_content=2),
                      els_restart=True)


def _seed_b(name: str, seed: int) -> World:
    probe = _sim(name, seed, datetime(2025, 11, 21, tzinfo=UTC), True)
    t_reg = datetime(2025, 11, 21, 9, 0, tzinfo=UTC) + timedelta(seconds=probe.rng.randint(0, 6 * 3600))
    sim = _sim(name, seed, t_reg - timedelta(seconds=60), True)
    sim.rng = probe.rng
    tb = _batch(sim, "GUEST", t_reg, 2, mode="enum_b", lead_s=-0.25, pipeline="cj_assessment")
    tb.bos_relay_delay_ms = 900.0
    tb.pipe_corr = sim.uuid()
    tb.t_pipe = t_reg + timedelta(seconds=9.2)
    batches = [tb] + _background(sim, t_reg, mode="enum_b", pipelines=False)
    sim.run_batches(batches)
    return sim.finish(end=t_reg + timedelta(seconds=36), description=SCENARIOS[name], target=_target(tb),
                      expected=_expected(name, tb, pending_content=len(tb.pending)))


_BUILDERS: dict[str, Callable[[str, int], World]] = {
    "healthy_guest": lambda n, s: _healthy(n, s, "GUEST"),
    "healthy_regular": lambda n, s: _healthy(n, s, "REGULAR"),
    "seed_variant_a": _seed_a,
    "seed_variant_b": _seed_b,
    "outbox_poisoned": lambda n, s: _stuck(n, s, "poisoned"),
    "validation_failure": lambda n, s: _stuck(n, s, "vfail"),
}


def build(name: str, seed: int = 0) -> World:
    """Build the world of scenario ``name`` from ``seed``.

    Raises:
        ValueError: ``name`` is not a known scenario.
    """
    if name not in _BUILDERS:
        raise ValueError(f"Unknown scenario {name!r}. Valid scenarios: {', '.join(sorted(SCENARIOS))}.")
    return _BUILDERS[name](name, seed)
