"""Connection profiles: where a HuleEdu stack's databases, Docker engine, Loki and captured logs are.

A :class:`Profile` names, for each database of the model (``model.DATABASES``), a SQLAlchemy URL for
psycopg 3, the env var holding its password, its database container and its service containers; and
the Docker base URL, an optional Loki URL and an optional directory of captured log files.

The built-in ``dev`` profile matches HuleEdu's compose dev setup (BOS on 127.0.0.1:5438, ELS on 5433,
File Service on 5439, user ``huleedu_user``, password from ``HULEEDU_DB_PASSWORD``, the local Docker
socket, no Loki).

A TOML file adds profiles or overrides the built-in one. It is read from ``--config``
(``config_path``), else ``$HULEEDU_FORENSICS_CONFIG``, else ``~/.config/huledu-forensics/config.toml``
(a missing default file is fine)::

    [profiles.prod]                      # HuleEdu production: every database on one server
    host = "10.0.0.5"                    # defaults for every database of this profile
    port = 5432
    user = "huleedu_user"
    password_env = "HULEEDU_PROD_DB_PASSWORD"
    docker = "ssh://deploy@hemma"        # or false for no Docker; default: the local socket
    loki = "http://hemma:3100"
    logs_dir = "/var/log/huleedu"

    [profiles.prod.databases.huleedu_essay_lifecycle]
    port = 5433                          # any of: dsn, host, port, user, password_env, dbname,
    container = "shared-postgres"        #         container, service_containers

A profile named ``dev`` in the file is layered over the built-in ``dev``; any other profile starts
from the model's defaults (database names, containers) and the dev host/ports unless it says
otherwise.

Environment variables override the loaded profile (``<KEY>`` is the service key of the database:
``BOS``, ``ELS``, ``FILE``):

- ``HULEEDU_FORENSICS_<KEY>_DSN``: the whole URL of that database (it may hold a password);
- ``HULEEDU_FORENSICS_DOCKER_URL`` (``none`` disables Docker), ``HULEEDU_FORENSICS_LOKI_URL``,
  ``HULEEDU_FORENSICS_LOGS_DIR``.

Passwords are read only from the env var a database names (``password_env``) or from its DSN, held in
memory, and never written: ``repr``/``str`` and :meth:`Profile.describe` mask them. Notebooks get the
profile *name*, never credentials.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from . import model
from .errors import ConfigError, SourceUnavailable

__all__ = [
    "BUILTIN_PROFILES",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "CheckReport",
    "DatabaseCheck",
    "DatabaseTarget",
    "Profile",
    "check",
    "config_path",
    "dev_profile",
    "load_profile",
    "profile_names",
]

CONFIG_ENV = "HULEEDU_FORENSICS_CONFIG"
DEFAULT_CONFIG_PATH = Path("~/.config/huledu-forensics/config.toml")
DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
DEV_USER = model.services.DEV_DB_USER
DEV_PASSWORD_ENV = model.services.DEV_DB_PASSWORD_ENV
DEV_HOST = "127.0.0.1"
_PG_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg")
_DB_KEYS = {"dsn", "host", "port", "user", "password_env", "dbname", "container", "service_containers"}
_PROFILE_KEYS = {"host", "port", "user", "password_env", "docker", "loki", "logs_dir", "databases",
                 "description"}


@dataclass(frozen=True)
class DatabaseTarget:
    """Where one model database lives.

    ``dsn`` is a SQLAlchemy URL (``postgresql+psycopg://user@host:port/db``); a password in it is
    allowed but masked everywhere. ``password_env`` names the env var to read the password from when
    the DSN has none.
    """

    name: str
    dsn: str
    password_env: str | None = None
    container: str | None = None
    service_containers: tuple[str, ...] = ()

    def parsed(self) -> URL:
        """The DSN parsed and checked (no password filled in).

        Raises:
            ConfigError: the DSN cannot be parsed, names another database system or driver, or has a
                port that is not a number from 1 to 65535. The message never shows the password.
        """
        try:
            u = make_url(self.dsn)
            port = u.port  # parsed lazily: 'notaport' raises here
        except (ArgumentError, ValueError, TypeError):
            raise ConfigError(f"The DSN of database '{self.name}' cannot be parsed. Write it as "
                              "postgresql+psycopg://user@host:port/dbname.") from None
        if u.drivername not in _PG_DRIVERS:
            raise ConfigError(f"The DSN of database '{self.name}' uses '{u.drivername[:40]}'; the kit reads "
                              "PostgreSQL through psycopg only. Write it as "
                              "postgresql+psycopg://user@host:port/dbname.")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(f"The DSN of database '{self.name}' has port {port}, which is not a TCP port "
                              "(1-65535). Fix the port.")
        return u

    def url(self) -> URL:
        """The URL to connect with, the password filled in from ``password_env`` when set.

        Raises:
            ConfigError: the DSN is malformed (see :meth:`parsed`).
        """
        u = self.parsed()
        if u.drivername in ("postgresql", "postgres"):
            u = u.set(drivername="postgresql+psycopg")
        if not u.password and self.password_env and os.environ.get(self.password_env):
            u = u.set(password=os.environ[self.password_env])
        return u

    def masked_dsn(self) -> str:
        """The DSN with any password replaced by ``***``."""
        try:
            return make_url(self.dsn).render_as_string(hide_password=True)
        except (ArgumentError, ValueError, TypeError):
            return "<unparseable DSN>"

    def __repr__(self) -> str:
        return (f"DatabaseTarget(name={self.name!r}, dsn={self.masked_dsn()!r}, "
                f"password_env={self.password_env!r}, container={self.container!r}, "
                f"service_containers={self.service_containers!r})")

    __str__ = __repr__


@dataclass(frozen=True)
class Profile:
    """A named set of connections to one HuleEdu stack. Secrets are masked in ``repr``/``str``."""

    name: str
    databases: dict[str, DatabaseTarget] = field(default_factory=dict)
    docker_url: str | None = DEFAULT_DOCKER_URL
    loki_url: str | None = None
    logs_dir: Path | None = None
    description: str = ""
    origin: str = "built-in"

    def database(self, name: str) -> DatabaseTarget:
        """Return the target of model database ``name``."""
        try:
            return self.databases[name]
        except KeyError:
            raise ConfigError(f"Profile '{self.name}' has no database '{name}'; it has "
                              f"{', '.join(sorted(self.databases)) or 'none'}.") from None

    def service_containers(self) -> list[str]:
        """Every service container of the profile's databases' services (model order, unique)."""
        out: list[str] = []
        for t in self.databases.values():
            out.extend(c for c in t.service_containers if c not in out)
        return out

    def db_containers(self) -> list[str]:
        """The database containers (unique; in production several databases share one)."""
        out: list[str] = []
        for t in self.databases.values():
            if t.container and t.container not in out:
                out.append(t.container)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description with every password masked (for notebooks and manifests)."""
        return {
            "name": self.name,
            "origin": self.origin,
            "description": self.description,
            "databases": {n: {"dsn": t.masked_dsn(), "password_env": t.password_env,
                              "container": t.container,
                              "service_containers": list(t.service_containers)}
                          for n, t in self.databases.items()},
            "docker_url": _mask_plain(self.docker_url),
            "loki_url": _mask_plain(self.loki_url),
            "logs_dir": str(self.logs_dir) if self.logs_dir else None,
        }

    def __repr__(self) -> str:
        dbs = ", ".join(f"{n}={t.masked_dsn()!r}" for n, t in self.databases.items())
        return (f"Profile(name={self.name!r}, databases={{{dbs}}}, docker_url="
                f"{_mask_plain(self.docker_url)!r}, loki_url={_mask_plain(self.loki_url)!r}, "
                f"logs_dir={str(self.logs_dir) if self.logs_dir else None!r})")

    __str__ = __repr__


def _mask_plain(url: str | None) -> str | None:
    """Mask ``user:password@`` in a non-database URL (Loki, Docker over TCP/SSH)."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1) if "@" in rest.split("/", 1)[0] else ("", rest)
    if not creds or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def _dsn(host: str, port: int, user: str | None, dbname: str) -> str:
    return URL.create("postgresql+psycopg", username=user, host=host, port=int(port),
                      database=dbname).render_as_string(hide_password=False)


def _default_targets(host: str = DEV_HOST, port: int | None = None, user: str | None = DEV_USER,
                     password_env: str | None = DEV_PASSWORD_ENV) -> dict[str, DatabaseTarget]:
    out = {}
    for name, db in model.DATABASES.items():
        svc = model.SERVICES[db.service]
        out[name] = DatabaseTarget(
            name=name, dsn=_dsn(host, port or db.dev_port, user, name), password_env=password_env,
            container=db.container, service_containers=tuple(svc.containers))
    return out


def dev_profile() -> Profile:
    """HuleEdu's compose dev setup (SYSTEM.md §1)."""
    return Profile(name="dev", databases=_default_targets(), docker_url=DEFAULT_DOCKER_URL,
                   description="HuleEdu docker compose dev stack on this machine")


BUILTIN_PROFILES = ("dev",)


def config_path(explicit: str | Path | None = None) -> tuple[Path, bool]:
    """Return the config file to read and whether it was asked for explicitly."""
    if explicit is not None:
        return Path(explicit).expanduser(), True
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser(), True
    return DEFAULT_CONFIG_PATH.expanduser(), False


def _read_config(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"Config file '{path}' does not exist. Create it, or drop --config / "
                              f"${CONFIG_ENV} to use the built-in profiles.")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)  # Python >= 3.14; older ones say "(at line N, column M)"
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        if line is None and m:
            line = int(m.group(1))
        where = f"{path}:{line}" if line else str(path)
        msg = str(exc).split(" (at ", 1)[0]
        raise ConfigError(f"Config file {where} is not valid TOML ({msg}). Fix that line.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file '{path}' ({exc.__class__.__name__}). Check its "
                          "permissions and encoding.") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"In '{path}', 'profiles' must be a table: write [profiles.<name>] sections.")
    return profiles


def profile_names(config_path_: str | Path | None = None) -> list[str]:
    """Names of every profile: built-in ones and those of the config file."""
    path, explicit = config_path(config_path_)
    return sorted(set(BUILTIN_PROFILES) | set(_read_config(path, explicit)))


def _apply_section(base: Profile, sec: dict[str, Any], path: Path, pname: str) -> Profile:
    unknown = set(sec) - _PROFILE_KEYS
    if unknown:
        raise ConfigError(f"In '{path}', profile '{pname}' has unknown key(s) {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(_PROFILE_KEYS))}.")
    dbs = dict(base.databases)
    per_db = sec.get("databases", {}) or {}
    if not isinstance(per_db, dict):
        raise ConfigError(f"In '{path}', profiles.{pname}.databases must be a table.")
    bad = set(per_db) - set(model.DATABASES)
    if bad:
        raise ConfigError(f"In '{path}', profile '{pname}' names unknown database(s) "
                          f"{', '.join(sorted(bad))}; known: {', '.join(model.DATABASES)}.")
    for name in model.DATABASES:
        cur = dbs[name]
        d = dict(per_db.get(name, {}))
        unknown = set(d) - _DB_KEYS
        if unknown:
            raise ConfigError(f"In '{path}', profiles.{pname}.databases.{name} has unknown key(s) "
                              f"{', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_DB_KEYS))}.")
        merged: dict[str, Any] = {k: sec[k] for k in ("host", "port", "user", "password_env") if k in sec}
        merged.update(d)
        dsn = cur.dsn
        if "dsn" in merged:
            dsn = str(merged["dsn"])
        elif any(k in merged for k in ("host", "port", "user", "dbname")):
            u = cur.parsed()
            try:
                port = int(merged.get("port", u.port or 5432))
            except (TypeError, ValueError):
                raise ConfigError(f"In '{path}', profile '{pname}': port {merged.get('port')!r} is not "
                                  "a number.") from None
            dsn = _dsn(str(merged.get("host", u.host)), port, merged.get("user", u.username),
                       str(merged.get("dbname", u.database)))
        sc = merged.get("service_containers", cur.service_containers)
        dbs[name] = DatabaseTarget(
            name=name, dsn=dsn, password_env=merged.get("password_env", cur.password_env) or None,
            container=merged.get("container", cur.container),
            service_containers=tuple(sc) if isinstance(sc, (list, tuple)) else (str(sc),))
    docker = sec.get("docker", base.docker_url)
    docker_url = None if docker is False or docker in ("", "none") else (
        DEFAULT_DOCKER_URL if docker is True else docker)
    logs_dir = sec.get("logs_dir", base.logs_dir)
    return replace(base, databases=dbs, docker_url=docker_url, loki_url=sec.get("loki", base.loki_url),
                   logs_dir=Path(logs_dir).expanduser() if logs_dir else None,
                   description=str(sec.get("description", base.description)), origin=str(path))


def _apply_env(p: Profile) -> Profile:
    dbs = dict(p.databases)
    for name in dbs:
        key = model.DATABASES[name].service.upper()
        dsn = os.environ.get(f"HULEEDU_FORENSICS_{key}_DSN")
        if dsn:
            dbs[name] = replace(dbs[name], dsn=dsn)
    docker = os.environ.get("HULEEDU_FORENSICS_DOCKER_URL", p.docker_url)
    loki = os.environ.get("HULEEDU_FORENSICS_LOKI_URL", p.loki_url)
    logs = os.environ.get("HULEEDU_FORENSICS_LOGS_DIR")
    return replace(p, databases=dbs, docker_url=None if docker in ("", "none") else docker,
                   loki_url=loki or None, logs_dir=Path(logs).expanduser() if logs else p.logs_dir)


def load_profile(name: str, config_path: str | Path | None = None) -> Profile:
    """Load profile ``name``: built-in defaults, then the config file, then env overrides.

    Raises:
        ConfigError: unknown profile name (the message lists the known ones), a malformed or
            missing config file (with file and line), or an unknown key.
    """
    path, explicit = _config_path(config_path)
    sections = _read_config(path, explicit)
    known = sorted(set(BUILTIN_PROFILES) | set(sections))
    if name not in known:
        raise ConfigError(f"Unknown profile '{name}'. Known profiles: {', '.join(known)} "
                          f"(config file: {path}).")
    base = dev_profile() if name == "dev" else Profile(name=name, databases=_default_targets())
    sec = sections.get(name)
    if sec is not None:
        if not isinstance(sec, dict):
            raise ConfigError(f"In '{path}', profiles.{name} must be a table.")
        base = _apply_section(base, sec, path, name)
    prof = _apply_env(base)
    from .safety import register_secret_env

    for target in prof.databases.values():
        target.parsed()  # a malformed DSN is bad input (exit 4), found before anything connects
        register_secret_env(target.password_env)  # never passed on to a kernel or a browser
    if prof.loki_url:
        from .sources.loki import LokiSource

        LokiSource(prof.loki_url)  # ConfigError for a URL that is not http(s)://host[:port]
    return prof


_config_path = config_path


# ---------------------------------------------------------------------------------------------------
# check


@dataclass
class DatabaseCheck:
    """What :func:`check` found for one database."""

    name: str
    dsn: str
    reachable: bool = False
    error: str | None = None
    server_version: str | None = None
    tables_found: list[str] = field(default_factory=list)
    tables_missing: list[str] = field(default_factory=list)
    enums: dict[str, list[str]] = field(default_factory=dict)
    drift: dict[str, dict[str, list[str]]] = field(default_factory=dict)


@dataclass
class CheckReport:
    """The result of :func:`check`. ``ok`` is true when every configured source could be reached."""

    profile: str
    databases: list[DatabaseCheck] = field(default_factory=list)
    docker: dict[str, Any] = field(default_factory=dict)
    loki: dict[str, Any] = field(default_factory=dict)
    logs_dir: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every database reachable, and Docker / Loki / the logs directory when configured."""
        parts = [d.reachable for d in self.databases]
        for extra in (self.docker, self.loki, self.logs_dir):
            if extra.get("configured"):
                parts.append(bool(extra.get("reachable")))
        return all(parts)

    def render(self) -> str:
        """A plain-text report, one line per finding."""
        out = [f"Profile '{self.profile}': {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        for d in self.databases:
            if not d.reachable:
                out.append(f"  [FAIL] database {d.name} ({d.dsn}): unreachable: {d.error}")
                continue
            out.append(f"  [ OK ] database {d.name} ({d.dsn}): PostgreSQL {d.server_version}, "
                       f"{len(d.tables_found)} model table(s) found")
            if d.tables_missing:
                out.append(f"  [WARN]   missing tables: {', '.join(d.tables_missing)}")
            for enum, labels in sorted(d.enums.items()):
                dr = d.drift.get(enum)
                if dr and (dr.get("missing") or dr.get("extra")):
                    bits = []
                    if dr.get("missing"):
                        bits.append(f"lacks {_some(dr['missing'])}")
                    if dr.get("extra"):
                        bits.append(f"has legacy {_some(dr['extra'])}")
                    out.append(f"  [WARN]   enum {enum} ({len(labels)} labels) drifts from the code: "
                               + "; ".join(bits))
                else:
                    out.append(f"  [ OK ]   enum {enum}: {len(labels)} labels")
        for title, part in (("docker", self.docker), ("loki", self.loki), ("logs dir", self.logs_dir)):
            if not part.get("configured"):
                out.append(f"  [ -- ] {title}: not configured")
            elif not part.get("reachable"):
                out.append(f"  [FAIL] {title} ({part.get('target')}): {part.get('error')}")
            else:
                out.append(f"  [ OK ] {title} ({part.get('target')}) {part.get('detail', '')}".rstrip())
                for c, st in part.get("containers", {}).items():
                    out.append(f"           {c}: {st}")
        return "\n".join(out)


def _some(labels: list[str], n: int = 6) -> str:
    """``a, b, c (+N more)``: long label lists stay on one readable line."""
    head = ", ".join(labels[:n])
    return head if len(labels) <= n else f"{head} (+{len(labels) - n} more)"


def _check_database(profile: Profile, target: DatabaseTarget) -> DatabaseCheck:
    from .sources.postgres import PostgresSource

    res = DatabaseCheck(target.name, target.masked_dsn())
    try:
        src = PostgresSource(f"postgres:{target.name}", target.name, target.url(), connect_timeout_s=3)
        try:
            res.server_version = src.server_version()
            tables = set(src.tables())
            res.enums = src.enums()
        finally:
            src.close()
    except (SourceUnavailable, ConfigError) as exc:
        res.error = str(exc)
        return res
    res.reachable = True
    wanted = model.DATABASES[target.name].tables
    res.tables_found = [t for t in wanted if t in tables]
    res.tables_missing = [t for t in wanted if t not in tables]
    for (db, enum), labels in model.PYTHON_ENUMS.items():
        if db != target.name:
            continue
        have = res.enums.get(enum)
        if have is None:
            res.drift[enum] = {"missing": list(labels), "extra": []}
            res.enums.setdefault(enum, [])
            continue
        res.drift[enum] = {"missing": [x for x in labels if x not in have],
                           "extra": [x for x in have if x not in labels]}
    return res


def _check_docker(profile: Profile) -> dict[str, Any]:
    if not profile.docker_url:
        return {"configured": False}
    part: dict[str, Any] = {"configured": True, "target": _mask_plain(profile.docker_url)}
    from .sources.docker import DockerSource

    try:
        ds = DockerSource(base_url=profile.docker_url)
        ready, detail = ds.ready()
        if not ready:
            part.update(reachable=False, error=detail)
            return part
        containers = {}
        for name in [*profile.service_containers(), *profile.db_containers()]:
            containers[name] = ds.container_state(name).state
    except SourceUnavailable as exc:
        part.update(reachable=False, error=str(exc))
        return part
    except Exception as exc:  # noqa: BLE001 - a foreign source must not crash the check
        part.update(reachable=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return part
    running = sum(1 for s in containers.values() if s == "running")
    part.update(reachable=True, containers=containers,
                detail=f"{detail}; {running}/{len(containers)} model containers running")
    return part


def _check_loki(profile: Profile) -> dict[str, Any]:
    if not profile.loki_url:
        return {"configured": False}
    part: dict[str, Any] = {"configured": True, "target": _mask_plain(profile.loki_url)}
    from .sources.loki import LokiSource

    try:
        answer = LokiSource(profile.loki_url, timeout=10).probe()  # /ready and the query API
    except Exception as exc:  # noqa: BLE001 - a foreign source must not crash the check
        part.update(reachable=False, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return part
    ready, why = answer if isinstance(answer, tuple) else (bool(answer), "")
    part.update(reachable=bool(ready), detail=why if ready else "",
                error=None if ready else (why or "/ready did not answer ready"))
    return part


def _check_logs_dir(profile: Profile) -> dict[str, Any]:
    if not profile.logs_dir:
        return {"configured": False}
    p = Path(profile.logs_dir)
    if not p.is_dir():
        return {"configured": True, "target": str(p), "reachable": False,
                "error": "not a directory"}
    n = sum(1 for _ in p.glob("*.log"))
    return {"configured": True, "target": str(p), "reachable": True, "detail": f"{n} log file(s)"}


def check(profile: Profile) -> CheckReport:
    """Check every source of ``profile``: databases (version, tables, enum drift), Docker, Loki, logs."""
    rep = CheckReport(profile.name)
    for target in profile.databases.values():
        rep.databases.append(_check_database(profile, target))
    rep.docker = _check_docker(profile)
    rep.loki = _check_loki(profile)
    rep.logs_dir = _check_logs_dir(profile)
    return rep
