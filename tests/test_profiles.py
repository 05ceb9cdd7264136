"""Connection profiles: the built-in dev profile, TOML config, env overrides, secret masking, check()."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from huledu_forensics import model
from huledu_forensics.errors import ConfigError
from huledu_forensics.profiles import DEFAULT_DOCKER_URL, check, load_profile, profile_names
from huledu_forensics.world import load_world_dir
from tests.support.corpus import require_corpus
from tests.support.pg_world import DatabaseFactory, load_world_into_postgres, profile_for

BOS, ELS, FILE = "huleedu_batch_orchestrator", "huleedu_essay_lifecycle", "huleedu_file_service"
SECRET = "pw-Zq9-very-secret"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient config or overrides: point the default config at an empty temp dir."""
    for var in ("HULEEDU_FORENSICS_CONFIG", "HULEEDU_FORENSICS_BOS_DSN", "HULEEDU_FORENSICS_ELS_DSN",
                "HULEEDU_FORENSICS_FILE_DSN", "HULEEDU_FORENSICS_DOCKER_URL",
                "HULEEDU_FORENSICS_LOKI_URL", "HULEEDU_FORENSICS_LOGS_DIR", "HULEEDU_DB_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(body)
    return p


def test_dev_profile_matches_the_compose_dev_stack() -> None:
    p = load_profile("dev")
    ports = {name: t.url().port for name, t in p.databases.items()}
    assert ports == {BOS: 5438, ELS: 5433, FILE: 5439}
    for name, t in p.databases.items():
        u = t.url()
        assert (u.host, u.username, u.database, u.drivername) == (
            "127.0.0.1", "huleedu_user", name, "postgresql+psycopg")
        assert t.password_env == "HULEEDU_DB_PASSWORD"
        assert t.container == model.DATABASES[name].container
    assert p.databases[ELS].service_containers == ("huleedu_essay_lifecycle_worker",
                                                    "huleedu_essay_lifecycle_api")
    assert p.docker_url == DEFAULT_DOCKER_URL and p.loki_url is None and p.logs_dir is None


def test_password_from_env_is_used_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEEDU_DB_PASSWORD", SECRET)
    p = load_profile("dev")
    assert p.databases[BOS].url().password == SECRET
    shown = [repr(p), str(p), json.dumps(p.describe()), repr(p.databases[BOS])]
    assert not any(SECRET in s for s in shown)
    assert p.describe()["databases"][BOS]["password_env"] == "HULEEDU_DB_PASSWORD"


def test_password_inside_a_dsn_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEEDU_FORENSICS_ELS_DSN",
                       f"postgresql+psycopg://admin:{SECRET}@db.internal:6432/huleedu_essay_lifecycle")
    p = load_profile("dev")
    assert p.databases[ELS].url().password == SECRET
    assert p.databases[ELS].url().host == "db.internal"
    assert SECRET not in repr(p) and SECRET not in json.dumps(p.describe())
    assert "***" in p.describe()["databases"][ELS]["dsn"]


def test_config_file_serves_the_shared_server_layout(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, """
[profiles.prod]
host = "10.1.2.3"
port = 5432
user = "forensics"
password_env = "HULEEDU_PROD_DB_PASSWORD"
docker = false
loki = "http://10.1.2.3:3100"
logs_dir = "/var/log/huleedu"

[profiles.prod.databases.huleedu_essay_lifecycle]
port = 6543
container = "shared-postgres"

[profiles.dev]
loki = "http://127.0.0.1:3100"
""")
    p = load_profile("prod", cfg)
    for name, t in p.databases.items():
        u = t.url()
        assert (u.host, u.username, u.database) == ("10.1.2.3", "forensics", name)
        assert t.password_env == "HULEEDU_PROD_DB_PASSWORD"
    assert p.databases[BOS].url().port == 5432 and p.databases[ELS].url().port == 6543
    assert p.databases[ELS].container == "shared-postgres"
    assert p.docker_url is None and p.loki_url == "http://10.1.2.3:3100"
    assert p.logs_dir == Path("/var/log/huleedu")
    # a dev section is layered over the built-in dev profile
    dev = load_profile("dev", cfg)
    assert dev.loki_url == "http://127.0.0.1:3100" and dev.databases[ELS].url().port == 5433
    # the env var names the config file too, and env overrides beat the file
    monkeypatch.setenv("HULEEDU_FORENSICS_CONFIG", str(cfg))
    monkeypatch.setenv("HULEEDU_FORENSICS_BOS_DSN", "postgresql://x@h:1/huleedu_batch_orchestrator")
    p = load_profile("prod")
    assert p.databases[BOS].url().host == "h" and p.databases[ELS].url().port == 6543
    assert profile_names() == ["dev", "prod"]


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "[profiles.staging]\nhost = 'x'\n")
    with pytest.raises(ConfigError, match=r"Unknown profile 'prdo'\. Known profiles: dev, staging"):
        load_profile("prdo", cfg)


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "[profiles.prod]\nhost = '10.0.0.1'\nport = = 5\n")
    with pytest.raises(ConfigError) as err:
        load_profile("prod", cfg)
    assert f"{cfg}:3" in str(err.value) and "\n" not in str(err.value)


def test_config_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile("dev", tmp_path / "nope.toml")
    cfg = _config(tmp_path, "[profiles.prod]\nhots = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown key.*hots"):
        load_profile("prod", cfg)
    cfg = _config(tmp_path, "[profiles.prod.databases.huleedu_nope]\nport = 1\n")
    with pytest.raises(ConfigError, match="unknown database"):
        load_profile("prod", cfg)


@pytest.fixture(scope="module")
def seed_a(pg_admin_dsn: str) -> Iterator[dict[str, str]]:
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        yield load_world_into_postgres(load_world_dir(require_corpus("seed-variant-a")), factory)
    finally:
        factory.drop_all()


@pytest.mark.postgres
def test_check_reports_reachable_and_unreachable_databases(seed_a: dict[str, str]) -> None:
    p = profile_for({BOS: seed_a[BOS], ELS: seed_a[ELS]})  # File Service points at port 1
    rep = check(p)
    assert not rep.ok
    text = rep.render()
    assert f"[ OK ] database {BOS}" in text and "PostgreSQL 15" in text
    assert f"[FAIL] database {FILE}" in text and "unreachable" in text
    els = next(d for d in rep.databases if d.name == ELS)
    assert els.reachable and len(els.enums["essay_status_enum"]) == 10
    assert "uploaded" in els.drift["essay_status_enum"]["missing"]
    assert "lacks" in text and "uploaded" in text
    assert "docker: not configured" in text


@pytest.mark.postgres
def test_check_ok_when_everything_configured_answers(seed_a: dict[str, str]) -> None:
    rep = check(profile_for(seed_a, logs_dir=str(require_corpus("seed-variant-a") / "logs")))
    assert rep.ok, rep.render()
    bos = next(d for d in rep.databases if d.name == BOS)
    assert bos.tables_missing == [] and set(bos.tables_found) == set(model.DATABASES[BOS].tables)
    assert "logs dir" in rep.render()


@pytest.mark.postgres
def test_check_reports_unreachable_docker_and_loki(seed_a: dict[str, str]) -> None:
    rep = check(profile_for(seed_a, docker="tcp://127.0.0.1:1", loki="http://127.0.0.1:1"))
    assert not rep.ok
    text = rep.render()
    assert "[FAIL] docker (tcp://127.0.0.1:1)" in text
    assert "[FAIL] loki (http://127.0.0.1:1)" in text
    assert all(d.reachable for d in rep.databases)
