"""The newest settings version, parsed once per content: what each database holds is what it
gets, whatever another database with the same ids holds."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.shared import versions
from omo.shared.versions import NewestVersion

META = sa.MetaData()
TABLE = sa.Table(
    "settings_versions",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.JSON, nullable=False),
)


class Parser:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, raw: Any) -> dict[str, Any]:
        self.calls += 1
        return dict(raw)


def database() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    META.create_all(engine)
    return engine


def add(engine: sa.Engine, body: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(TABLE), {"body": body})


def newest(engine: sa.Engine, version: NewestVersion[dict[str, Any]]) -> dict[str, Any]:
    with Session(engine) as session, session.begin():
        return version.get(session, default={"default": True})


def test_each_database_gets_its_own_newest_version_and_each_content_is_parsed_once() -> None:
    parse = Parser()
    version = NewestVersion(TABLE, "body", parse)
    one, two = database(), database()
    assert newest(one, version) == {"default": True}
    add(one, {"rate": 1})
    add(two, {"rate": 2})  # the same id, 1, in another database
    assert newest(one, version) == {"rate": 1}
    assert newest(two, version) == {"rate": 2}
    assert newest(one, version) == {"rate": 1}
    assert parse.calls == 2
    add(one, {"rate": 3})
    assert newest(one, version) == {"rate": 3}
    assert newest(two, version) == {"rate": 2}
    assert parse.calls == 3


def test_a_version_written_in_the_transaction_counts() -> None:
    version = NewestVersion(TABLE, "body", Parser())
    engine = database()
    with Session(engine) as session, session.begin():
        session.execute(sa.insert(TABLE), {"body": {"rate": 5}})
        assert version.get(session, default={}) == {"rate": 5}


def test_the_values_kept_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(versions, "KEEP", 3)
    parse = Parser()
    version = NewestVersion(TABLE, "body", parse)
    engine = database()
    for n in range(10):
        add(engine, {"rate": n})
        assert newest(engine, version) == {"rate": n}
    assert parse.calls == 10
    assert len(version._parsed) == 3


OTHER = sa.Table(
    "other_versions",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.JSON, nullable=False),
)


def test_read_together_one_statement_for_several_used_once_each() -> None:
    first, second = NewestVersion(TABLE, "body", Parser()), NewestVersion(OTHER, "body", Parser())
    engine = database()
    add(engine, {"rate": 1})
    add(engine, {"rate": 2})
    seen: list[str] = []
    with Session(engine) as session, session.begin():
        driver: Any = session.connection().connection.driver_connection
        driver.set_trace_callback(seen.append)
        versions.read_together(session, first, second)
        assert first.get(session, default={}) == {"rate": 2}
        assert second.get(session, default={"none": True}) == {"none": True}  # no row yet
        assert len(seen) == 1, seen
        session.execute(sa.insert(OTHER), {"body": {"level": "gold"}})
        assert second.get(session, default={}) == {"level": "gold"}  # read again: used once
        selects = [x for x in seen if x.startswith("SELECT")]
        assert len(selects) == 2 and "other_versions" in selects[1], seen
