"""Load a :class:`~huledu_forensics.world.World` into real PostgreSQL databases for live-source tests.

``load_world_into_postgres(world, make_pg_database)`` creates one database per world database (unique
names, via the ``make_pg_database`` fixture of ``tests/conftest.py``), runs the world's DDL and inserts
every row with bound parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.engine import URL, make_url

from huledu_forensics import model
from huledu_forensics.profiles import DatabaseTarget, Profile
from huledu_forensics.world import World

__all__ = ["DatabaseFactory", "load_world_into_postgres", "profile_for", "sqlalchemy_url"]

class DatabaseFactory:
    """Like conftest's ``make_pg_database``, for module-scoped fixtures: ``drop_all()`` cleans up.

    Loading a world costs a few seconds (CREATE/DROP DATABASE), so read-only tests share one load per
    module through this factory.
    """

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.made: list[str] = []

    def __call__(self, prefix: str = "test") -> str:
        """Create a uniquely named database and return its libpq DSN."""
        name = f"hf_{prefix}_{uuid.uuid4().hex[:12]}".lower()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.made.append(name)
        return make_conninfo(self.admin_dsn, dbname=name)

    def drop_all(self) -> None:
        """Force-drop every database this factory made."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for name in self.made:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
        self.made.clear()


def _libpq(dsn: str) -> str:
    u = make_url(dsn)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(dsn: str) -> str:
    """Turn a libpq DSN (URL or ``key=value`` conninfo) into a ``postgresql+psycopg://`` URL."""
    params = conninfo_to_dict(dsn)
    port = params.get("port")
    return URL.create("postgresql+psycopg", username=params.get("user"), password=params.get("password"),
                      host=params.get("host"), port=int(port) if port else None,
                      database=params.get("dbname")).render_as_string(hide_password=False)


def _value(v: Any, naive: bool) -> Any:
    if v is None:
        return None
    if isinstance(v, pd.Timestamp):
        if pd.isna(v):
            return None
        t = v.to_pydatetime()
        if t.tzinfo is not None:
            t = t.astimezone(UTC)
            return t.replace(tzinfo=None) if naive else t
        return t if naive else t.replace(tzinfo=UTC)
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v


def load_world_into_postgres(world: World, make_pg_database: Callable[..., Any]) -> dict[str, str]:
    """Create a database per world database, run its DDL and insert its rows.

    Returns ``{model database name: SQLAlchemy psycopg URL}``. Foreign keys are not enforced while
    loading (``session_replication_role = replica``), so table order does not matter.
    """
    out: dict[str, str] = {}
    for name, img in world.databases.items():
        dsn = sqlalchemy_url(make_pg_database(name.replace("huleedu_", "")))
        with psycopg.connect(_libpq(dsn), autocommit=True) as conn:
            if img.ddl:
                conn.execute(img.ddl)  # type: ignore[arg-type]
            conn.execute("SET session_replication_role = replica")
            types = {(r[0], r[1]): r[2] for r in conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema()").fetchall()}
            for tname, df in img.tables.items():
                if df.empty:
                    continue
                cols = [c for c in df.columns if (tname, c) in types]
                naive = {c: types[(tname, c)] == "timestamp without time zone" for c in cols}
                sql = (f'INSERT INTO "{tname}" (' + ", ".join(f'"{c}"' for c in cols) + ") VALUES ("
                       + ", ".join("%s" for _ in cols) + ")")
                rows = [[_value(v, naive[c]) for c, v in zip(cols, rec)]
                        for rec in df[cols].itertuples(index=False, name=None)]
                with conn.cursor() as cur:
                    cur.executemany(sql, rows)  # type: ignore[arg-type]
        out[name] = dsn
    return out


def profile_for(dsns: dict[str, str], *, docker: str | None = None, loki: str | None = None,
                logs_dir: str | Path | None = None, name: str = "test",
                password_env: str | None = None) -> Profile:
    """A profile whose databases are ``dsns`` (model database name → URL), other parts as given."""
    targets = {}
    for dbname, db in model.DATABASES.items():
        dsn = dsns.get(dbname) or f"postgresql+psycopg://nobody@127.0.0.1:1/{dbname}"
        targets[dbname] = DatabaseTarget(
            name=dbname, dsn=dsn, password_env=password_env, container=db.container,
            service_containers=tuple(model.SERVICES[db.service].containers))
    return Profile(name=name, databases=targets, docker_url=docker, loki_url=loki,
                   logs_dir=Path(logs_dir) if logs_dir else None, origin="tests")
