"""Which schema this code expects (the newest migration shipped with it)."""

from __future__ import annotations

from functools import lru_cache

from alembic.config import Config
from alembic.script import ScriptDirectory


@lru_cache(maxsize=1)
def migration_head() -> str | None:
    from omo.cli import alembic_config

    config = alembic_config("sqlite://")
    assert isinstance(config, Config)
    return ScriptDirectory.from_config(config).get_current_head()
