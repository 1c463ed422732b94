"""Which schema this code expects (the newest migration shipped with it)."""

from __future__ import annotations

from functools import lru_cache

from alembic.config import Config
from alembic.script import ScriptDirectory


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
