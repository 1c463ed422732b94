"""`omo backup` and `omo restore` (SQLite + PostgreSQL): a restored database holds every row the
original did, reconciles, and is ready; restoring over live data or overwriting is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from tests import factories as f
from tests.conftest import dump, empty_database, omo_cli


def test_backup_then_restore_gives_the_same_database(
    db_url: str, engine: sa.Engine, uow: UnitOfWork, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    f.store(uow)
    member = f.enrol(uow, phone="0912-345-678", consents={"email": True}).member.id
    f.post_order(uow, member_id=member)
    f.post_order(uow, customer=[{"kind": "phone", "value": "0912-345-678"}])
    file = tmp_path / "omo.backup"
    code, out = omo_cli(db_url, "backup", str(file), monkeypatch=monkeypatch)
    assert code == 0 and "backed up" in out
    again, out = omo_cli(db_url, "backup", str(file), monkeypatch=monkeypatch)
    assert again == 2 and "exists" in out  # never overwrites a backup

    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    target = empty_database(request, tmp_path, backend, "restored")
    code, out = omo_cli(target, "restore", str(file), monkeypatch=monkeypatch)
    assert code == 0, out
    restored = make_engine(Settings(database_url=target))
    try:
        assert dump(restored, skip=frozenset(), logs=True) == dump(
            engine, skip=frozenset(), logs=True
        )
        assert omo_cli(target, "check", monkeypatch=monkeypatch)[0] == 0
        with restored.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 2
    finally:
        restored.dispose()
    # a second restore into the now-full database is refused and changes nothing
    code, out = omo_cli(target, "restore", str(file), monkeypatch=monkeypatch)
    assert code == 2 and "restore failed" in out
