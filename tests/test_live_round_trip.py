"""Live and replayed investigations agree: every scenario loaded into real PostgreSQL databases and real
Docker containers, collected with ``snapshot``, gives the verdict of the simulator's offline bundle.

Needs PostgreSQL on 127.0.0.1:5432 and a Docker engine (CI starts one; elsewhere the test skips).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.collect import snapshot
from huledu_forensics.investigation import investigate
from huledu_forensics.simulate import build_world, scenario_names
from tests.support.docker_world import running_world
from tests.support.pg_world import load_world_into_postgres, profile_for

pytestmark = [pytest.mark.postgres, pytest.mark.docker, pytest.mark.slow]

DOCKER_URL = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
SECRET = "Hf-s3cret-pa55-7Qz"


def essentials(v: dict[str, Any]) -> dict[str, Any]:
    """What a reader acts on: where the batch is, what it waits for, why."""
    return {
        **{k: v[k] for k in ("batch_id", "flow", "healthy", "status", "current_state", "current_step",
                             "awaited_event")},
        "trigger": {k: (v["awaited"] or {}).get(k) for k in ("produced", "published", "consumed")},
        "root_cause": (v["root_cause"] or {}).get("finding"),
        "root_facts": {k: (v["root_cause"] or {}).get("facts", {}).get(k)
                       for k in ("database", "enum", "missing_value", "topic")},
        "chain": [c["finding"] for c in v["chain"]],
        "findings": sorted((f["id"], f["severity"]) for f in v["findings"]),
    }


@pytest.mark.parametrize("name", scenario_names())
def test_live_verdict_equals_offline_verdict(name: str, tmp_path: Path, make_pg_database: Any,
                                             docker_client: Any, busybox_image: str) -> None:
    world = build_world(name)
    batch = world.target["batch_id"]
    offline = investigate(write_world_bundle(world, tmp_path / "offline"), batch,
                          until=world.collected_at).verdict.to_json()

    dsns = load_world_into_postgres(world, make_pg_database)
    with running_world(docker_client, busybox_image, world):
        bundle = snapshot(profile_for(dsns, docker=DOCKER_URL), world.target[
            "registration_correlation_id"], tmp_path / "live", progress=False)
    assert bundle.manifest["scope"]["mode"] == "scoped"
    assert {s.kind for s in bundle.sources} >= {"postgres", "docker"}
    live = investigate(bundle, batch, until=world.collected_at).verdict.to_json()
    assert essentials(live) == essentials(offline)
    assert live["root_cause"] == offline["root_cause"] or essentials(live)["root_cause"] is None


def test_report_from_a_live_profile_via_the_command_line(tmp_path: Path, make_pg_database: Any,
                                                         docker_client: Any,
                                                         busybox_image: str) -> None:
    """`huledu-forensics report --profile P --id ID` on the seed incident, from the batch id and from
    the registration correlation id; the database password appears in no file the kit writes."""
    world = build_world("seed_variant_a")
    dsns = load_world_into_postgres(world, make_pg_database)
    config = tmp_path / "config.toml"
    lines = ["[profiles.seedlab]", f'docker = "{DOCKER_URL}"']
    for db, dsn in dsns.items():
        lines += [f"[profiles.seedlab.databases.{db}]", f'dsn = "{dsn}"',
                  'password_env = "HF_TEST_DB_PASSWORD"']
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "HF_TEST_DB_PASSWORD": SECRET}
    exe = Path(sys.executable).with_name("huledu-forensics")
    outs = []
    with running_world(docker_client, busybox_image, world):
        for start in (world.target["batch_id"], world.target["registration_correlation_id"]):
            out = tmp_path / f"report-{start[:8]}"
            proc = subprocess.run([str(exe), "report", "--profile", "seedlab", "--config", str(config),
                                   "--id", start, "--out", str(out)], env=env, capture_output=True,
                                  text=True, timeout=600)
            assert proc.returncode == 1, proc.stderr  # 1 = findings: the batch is stuck
            assert SECRET not in proc.stdout + proc.stderr
            outs.append(out)
    for out in outs:
        v = json.loads((out / "verdict.json").read_text())
        assert v["batch_id"] == "278f7fd9-37fe-406a-a735-f15128cb6b1f"
        assert v["current_state"] == "awaiting_content_validation"
        assert v["awaited_event"] == "huleedu.batch.content.provisioning.completed.v1"
        assert v["root_cause"]["finding"] == "enum.label_missing"
        assert v["root_cause"]["facts"]["missing_value"] == "uploaded"
        assert {"tracker.registered_without_essays", "pending.orphaned_content", "event.not_produced",
                "pipeline.request_rejected"} <= {c["finding"] for c in v["chain"]}
        for f in out.rglob("*"):
            if f.is_file():
                assert SECRET.encode() not in f.read_bytes(), f"password leaked into {f}"


@pytest.mark.parametrize("name", ["seed_variant_a", "outbox_poisoned"])
def test_live_verdict_through_loki_equals_offline_verdict(name: str, tmp_path: Path,
                                                          make_pg_database: Any) -> None:
    """Shared environments have no Docker access: the logs come from Loki (the project's local server
    answering as Loki's HTTP API does), the rows from PostgreSQL."""
    from huledu_forensics.testing import FakeLoki

    world = build_world(name)
    batch = world.target["batch_id"]
    offline = investigate(write_world_bundle(world, tmp_path / "offline"), batch,
                          until=world.collected_at).verdict.to_json()
    dsns = load_world_into_postgres(world, make_pg_database)
    with FakeLoki() as loki:
        loki.load_world(world)
        bundle = snapshot(profile_for(dsns, loki=loki.url), batch, tmp_path / "live",
                          since=world.collected_at.replace(hour=0, minute=0, second=0),
                          until=world.collected_at, progress=False)
        queries = loki.queries()
    assert any(batch in q for q in queries), "the scope ids were not pushed down into LogQL"
    assert "loki" in {s.kind for s in bundle.sources}
    live = investigate(bundle, batch, until=world.collected_at).verdict.to_json()
    assert essentials(live) == essentials(offline)
