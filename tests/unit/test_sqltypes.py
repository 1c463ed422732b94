"""UtcDateTime's SQLite bind: SQLAlchemy's own text for the same instant, so stored values, their
order and what SQLAlchemy reads back are as before the faster formatter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from omo.shared.sqltypes import UtcDateTime

DIALECT = sqlite.dialect()
OURS = UtcDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
THEIRS = sa.DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
READ = UtcDateTime().dialect_impl(DIALECT).result_processor(DIALECT, None)

zones = st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-9))])


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)), zones)
def test_sqlite_text_is_sqlalchemys(moment: datetime, zone: timezone | None) -> None:
    value = moment.replace(tzinfo=zone)
    naive_utc = value.astimezone(UTC).replace(tzinfo=None) if zone else value
    assert OURS is not None and THEIRS is not None and READ is not None
    text = OURS(value)
    assert text == THEIRS(naive_utc)
    assert len(text) == 26
    assert READ(text) == naive_utc.replace(tzinfo=UTC)


def test_none_and_wrong_types() -> None:
    assert OURS is not None
    assert OURS(None) is None
    with pytest.raises(TypeError, match="expected a datetime"):
        OURS("2024-01-05 10:00:00")


def test_postgresql_keeps_sqlalchemys_processing() -> None:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    moment = datetime(2024, 1, 5, 10, tzinfo=timezone(timedelta(hours=8)))
    value = process(moment) if process else UtcDateTime().process_bind_param(moment, dialect)
    assert value == moment and value.tzinfo == UTC
