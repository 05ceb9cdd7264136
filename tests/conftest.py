"""Fixtures shared by every test: real PostgreSQL and a real Docker engine.

Fixtures (all use real services; nothing is mocked):

``pg_admin_dsn``
    DSN of the maintenance database on the local PostgreSQL 15 (``$HULEDU_TEST_PG_DSN`` overrides).
``make_pg_database``
    Factory: ``dsn = make_pg_database()`` creates a uniquely named empty database and returns its
    DSN; every database it made is force-dropped at teardown.
``docker_client`` (session)
    A Docker SDK client for ``$DOCKER_HOST`` or the local socket.
``busybox_image`` (session)
    Tag of a tiny image (``huledu-forensics/busybox:test``) imported from the host's static busybox,
    with ``sh cat echo sleep ls``. Never pulled: there is no registry here.

When a service is not there the test is skipped with a message saying how to start it, except when
``CI=true``: CI must never skip, so the test fails instead.

Helpers live in ``tests/support`` and are imported as ``tests.support.<module>`` (this file puts the
repository root on ``sys.path``).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUSYBOX_IMAGE = "huledu-forensics/busybox:test"
BUSYBOX_APPLETS = ("sh", "cat", "echo", "sleep", "ls")
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
from tests.support.env import unavailable as _unavailable  # noqa: E402  (after the sys.path line)

# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """DSN of the ``postgres`` maintenance database (trust auth, user ``postgres``)."""
    dsn = os.environ.get("HULEDU_TEST_PG_DSN", PG_ADMIN_DSN)
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        _unavailable(f"no PostgreSQL at {dsn} ({str(exc).strip().splitlines()[0]}): start it with "
                     "pg_ctlcluster 15 main start")
    return dsn


@pytest.fixture
def make_pg_database(pg_admin_dsn: str) -> Iterator[Callable[..., str]]:
    """Factory creating uniquely named databases (``hf_<prefix>_<hex>``); returns each one's DSN.

    The DSN is a ``postgresql://`` URL (for SQLAlchemy write ``postgresql+psycopg://`` instead),
    e.g. ``postgresql://postgres@127.0.0.1:5432/hf_test_1a2b3c4d5e6f``.

    Databases are force-dropped at teardown, even when the test left connections open.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    made: list[str] = []

    def make(prefix: str = "test") -> str:
        name = f"hf_{prefix}_{uuid.uuid4().hex[:12]}".lower()
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        if "://" in pg_admin_dsn:
            parts = urlsplit(pg_admin_dsn)
            return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
        return make_conninfo(pg_admin_dsn, dbname=name)

    yield make
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ----------------------------------------------------------------------------- Docker


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A Docker SDK client, if the engine answers (else skip; fail under ``CI=true``)."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        _unavailable(f"no Docker engine ({' '.join(str(exc).split())[:160]}): start dockerd "
                     "--bridge=none --iptables=false")
    yield client
    client.close()


def _busybox_rootfs() -> bytes:
    """A tar of a root filesystem holding only a static busybox and a few applet links."""
    path = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(path):
        _unavailable("no busybox on this machine: apt-get install busybox-static")
    data = Path(path).read_bytes()
    if b"ld-linux" in data[:8192]:
        _unavailable(f"{path} is dynamically linked: apt-get install busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "w"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buf.getvalue()


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    """Tag of the tiny busybox image, imported once (``docker import``; never pulled)."""
    import docker.errors

    try:
        docker_client.images.get(BUSYBOX_IMAGE)
    except docker.errors.ImageNotFound:
        repo, tag = BUSYBOX_IMAGE.rsplit(":", 1)
        docker_client.api.import_image_from_data(_busybox_rootfs(), repository=repo, tag=tag)
        docker_client.images.get(BUSYBOX_IMAGE)
    return BUSYBOX_IMAGE
