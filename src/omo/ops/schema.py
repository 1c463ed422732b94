"""Which schema this code expects (the newest migration shipped with it), which one a database
is at, and what to tell the operator when the two differ."""

from __future__ import annotations

from functools import lru_cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    from omo.cli import alembic_config

    config = alembic_config("sqlite://")
    assert isinstance(config, Config)
    return ScriptDirectory.from_config(config)


def migration_head() -> str | None:
    return _scripts().get_current_head()


def known_revision(revision: str) -> bool:
    """Whether `revision` is one of this code's migrations (not a newer OMO's)."""
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an id it does not have
        return False


def database_schema(engine: Engine) -> str | None:
    """The schema revision the database is at; None when it has none (never migrated). A
    database that cannot be opened raises DBAPIError."""
    with engine.connect() as conn:
        try:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            return None
    return None if found is None else str(found)


def schema_advice(current: str | None) -> str | None:
    """What to say of a database at `current` ("is at schema …, this OMO needs …: run …");
    None when it is at this code's schema."""
    head = migration_head()
    if current == head:
        return None
    said = f"is at schema {current or '(none)'}, this OMO needs {head}"
    if current is None or known_revision(current):
        return f"{said}: run `omo db upgrade`"
    return f"{said} (a newer OMO's schema: run that OMO)"
