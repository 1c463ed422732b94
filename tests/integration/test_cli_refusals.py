"""What goes wrong around a command rather than in it — a setting the code cannot use, a
database that cannot be opened or is not migrated, a file that cannot be read or written — is
said in one line with exit 2, and changes nothing (SQLite + PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import dump, empty_database, omo_cli


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("OMO_TIME_ZONE", "Mars/Olympus", "not a time zone this machine knows"),
        ("OMO_DEFAULT_REGION", "ZZ", "not a region phone numbers are known for"),
        ("OMO_CURRENCY", "XYZ", "not an ISO 4217 currency code"),
        ("OMO_DATABASE_URL", "mysql://shop:s3cret@db/omo", "not a database OMO takes"),
        ("OMO_DATABASE_URL", "var/omo.sqlite", "not a database OMO takes"),
        ("OMO_MESSAGING_ADAPTERS", "smtp", "OMO_MESSAGING_ADAPTERS is not JSON"),
        ("OMO_MESSAGING_ADAPTERS", '{"email": "pigeon"}', "no adapter 'pigeon'"),
        ("OMO_MESSAGING_ADAPTERS", '{"fax": "smtp"}', "no channel 'fax'"),
        ("OMO_MESSAGE_CAPS", '{"email": -1}', "email: a cap is 0 or more messages"),
        ("OMO_PUBLIC_URL", "omo.example.com", "not a web address"),
        ("OMO_SHOP_URL", "javascript:alert(1)", "not a web address"),
        ("OMO_SMTP_PORT", "70000", "less than or equal to 65535"),
        ("OMO_SECRET_KEY", "s3cret", "at least 32 characters"),
    ],
)
def test_a_setting_the_code_cannot_use_is_said_by_its_name(
    name: str, value: str, said: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each of these ran before and failed later: a zone or a region at the first birthday or
    phone read, a currency at the first sale, a URL at the first connection (with the URL's
    password in the traceback), JSON with a traceback of the settings' parser, an unknown
    adapter at the first message (a channel unknown, or a negative cap, never); a link that is
    no web address went into every message, a port past 65535 failed each send, and a short
    secret signed the sessions and card links (a six-letter one is guessed)."""
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    if name == "OMO_DATABASE_URL":
        url = value
    else:
        monkeypatch.setenv(name, value)
    code, out = omo_cli(url, "check", monkeypatch=monkeypatch)
    assert code == 2 and said in out and name in out
    assert "s3cret" not in out
    assert not (tmp_path / "x.sqlite").exists()


def test_a_database_that_cannot_be_opened_is_said_without_its_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for url, reason in [
        ("postgresql://shop:s3cret@127.0.0.1:1/omo", "Connection refused"),
        (f"sqlite:///{blocked}/omo.sqlite", "unable to open database file"),
    ]:
        for args in (["check"], ["apikey", "create", "--name", "till"], ["db", "upgrade"]):
            code, out = omo_cli(url, *args, monkeypatch=monkeypatch)
            assert code == 2, out
            assert "error: cannot open the database" in out and reason in out
            assert "s3cret" not in out
            assert "shop:***@" in out or url.startswith("sqlite")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_database_not_migrated_says_to_migrate_it(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A new database before `omo db upgrade`: every command answered a traceback of a missing
    table (and `apikey create` on PostgreSQL, of a missing relation)."""
    url = empty_database(request, tmp_path, backend, "new")
    for args in (["check"], ["apikey", "create", "--name", "till"], ["expire-points"]):
        code, out = omo_cli(url, *args, monkeypatch=monkeypatch)
        assert code == 2, out
        assert "is at schema (none), this OMO needs" in out and "run `omo db upgrade`" in out
    assert omo_cli(url, "db", "upgrade", monkeypatch=monkeypatch)[0] == 0
    code, out = omo_cli(url, "apikey", "create", "--name", "till", monkeypatch=monkeypatch)
    assert code == 0, out


def test_a_database_of_a_newer_omo_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "newer.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    with sqlite3.connect(path) as conn:  # a schema this code does not know, and a table it moved
        conn.execute("UPDATE alembic_version SET version_num = '9999_later'")
        conn.execute("ALTER TABLE api_keys RENAME TO api_keys_v2")
    code, out = omo_cli(
        f"sqlite:///{path}", "apikey", "create", "--name", "x", monkeypatch=monkeypatch
    )
    assert code == 2, out
    assert "at schema 9999_later" in out and "a newer OMO's schema" in out


def test_a_database_error_of_the_command_itself_is_not_explained_away(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_template: Path
) -> None:
    """The database opens and is at this code's schema: the error is the command's own, and
    comes out as it is (a bug to see), not as advice to migrate."""
    from sqlalchemy.exc import OperationalError
    from typer.testing import CliRunner

    from omo.cli import app
    from omo.settings import get_settings

    path = tmp_path / "omo.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE api_keys RENAME TO api_keys_v2")
    monkeypatch.setenv("OMO_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["apikey", "create", "--name", "x"])
    finally:
        get_settings.cache_clear()
    assert isinstance(result.exception, OperationalError)
    assert "no such table: api_keys" in str(result.exception)


def test_files_that_cannot_be_read_are_refused_and_nothing_is_imported(
    db_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A JSONL file with a line that is not UTF-8 was a traceback (UnicodeDecodeError); an
    unknown `--encoding` was said to be neither UTF-8 nor Big5."""
    before = dump(engine)
    jsonl = tmp_path / "stores.jsonl"
    jsonl.write_bytes(
        b'{"code": "S1", "name": "a", "region": "n"}\n{"code": "S2", "name": "\xff"}\n'
    )
    code, out = omo_cli(db_url, "import", "stores", str(jsonl), monkeypatch=monkeypatch)
    assert code == 2 and "line 2 is not UTF-8 text" in out
    csv = tmp_path / "stores.csv"
    csv.write_text("code,name,region\nS1,信義店,台北市\n", encoding="utf-8")
    code, out = omo_cli(db_url, "import", "stores", str(csv), "--encoding", "nope",
                     monkeypatch=monkeypatch)  # fmt: skip
    assert code == 2 and "unknown text encoding 'nope'" in out
    code, out = omo_cli(db_url, "import", "stores", str(csv), "--encoding", "ascii",
                     monkeypatch=monkeypatch)  # fmt: skip
    assert code == 2 and "line 2 of stores.csv is not ascii text" in out
    assert dump(engine) == before
    bom = tmp_path / "bom.jsonl"  # a BOM before the first line is forgiven, CRLF too
    bom.write_bytes(b'\xef\xbb\xbf{"code": "S1", "name": "a", "region": "n"}\r\n')
    code, out = omo_cli(db_url, "import", "stores", str(bom), monkeypatch=monkeypatch)
    assert code == 0 and "created=1" in out


def test_an_export_or_backup_that_cannot_be_written_leaves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An export to a folder that cannot be made was a traceback; one that failed part-way
    left half a file where the last good export was."""
    blocked = tmp_path / "a-file"
    blocked.write_text("kept")
    for args in (["export", "stores", f"{blocked}/stores.csv"],
                 ["export", "stores", f"{blocked}/stores.parquet"],
                 ["backup", f"{blocked}/omo.backup"]):  # fmt: skip
        code, out = omo_cli(db_url, *args, monkeypatch=monkeypatch)
        assert code == 2 and f"cannot write {blocked}/" in out, out
    assert blocked.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "omo.sqlite") == ["a-file"]


def test_backing_up_a_missing_database_or_restoring_what_is_no_backup_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A backup of a database that is not there made an empty one there and "backed it up";
    a restore of a file that is no backup was a traceback and left an empty database behind."""
    missing = tmp_path / "typo.sqlite"
    code, out = omo_cli(
        f"sqlite:///{missing}", "backup", str(tmp_path / "b"), monkeypatch=monkeypatch
    )
    assert code == 2 and f"no database at {missing}" in out
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    target = tmp_path / "restored.sqlite"
    for source, said in [(text, "is not an SQLite database"), (tmp_path, "is not an SQLite "
                         "database"), (other, "holds no OMO database")]:  # fmt: skip
        code, out = omo_cli(f"sqlite:///{target}", "restore", str(source), monkeypatch=monkeypatch)
        assert code == 2 and said in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "other.db"]
