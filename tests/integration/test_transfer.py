"""Bulk import and export (SQLite + PostgreSQL): every format round-trips, bad files are refused
whole with the rows named, quarantine lands the good rows, re-imports change nothing, and the
Shopify and Shopee export shapes read as orders."""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from alembic import command
from openpyxl import Workbook

from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.demo.load import DemoSpec, load_demo
from omo.settings import Settings
from omo.transfer.exporter import export
from omo.transfer.importer import ImportRefused, import_file
from tests.conftest import dump, fresh_python
from tests.factories import store

KINDS = ("stores", "products", "members", "orders", "events")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A small demo world on SQLite, exported to CSV and Parquet; and its totals."""
    root = tmp_path_factory.mktemp("source")
    url = f"sqlite:///{root / 'source.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    load_demo(engine, DemoSpec(people=150, seed=3, months=12, until=date(2026, 10, 1)), root / "t")
    for kind in KINDS:
        export(engine, kind, root / f"{kind}.csv")
        export(engine, kind, root / f"{kind}.parquet")
    figures = totals(engine)
    engine.dispose()
    return root, figures


def totals(engine: sa.Engine) -> dict[str, Any]:
    queries = {
        "orders": "SELECT count(*), sum(total) FROM orders WHERE status != 'cancelled'",
        "lines": "SELECT count(*), sum(line_total) FROM order_lines",
        "members": "SELECT count(*) FROM members WHERE status = 'active'",
        "identifiers": "SELECT count(*) FROM member_identifiers",
        "stats": "SELECT count(*), sum(total_spend), sum(order_count) FROM member_stats",
        "guests": "SELECT count(*) FROM orders WHERE member_id IS NULL",
        "events": "SELECT count(*), count(member_id) FROM events",
        "consents": "SELECT count(*), sum(CASE WHEN granted THEN 1 ELSE 0 END) FROM member_consents",
    }
    with engine.connect() as conn:
        return {k: tuple(conn.execute(sa.text(q)).one()) for k, q in queries.items()}


def load_all(uow: UnitOfWork, root: Path, suffix: str) -> None:
    for kind in KINDS:
        report = import_file(uow, kind=kind, path=root / f"{kind}{suffix}")
        assert report.rejected_rows == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_then_import_gives_the_same_world(
    source: tuple[Path, dict[str, Any]], uow: UnitOfWork, suffix: str
) -> None:
    root, expected = source
    load_all(uow, root, suffix)
    assert totals(uow.engine) == expected


def test_jsonl_and_xlsx_read_the_same_rows(
    source: tuple[Path, dict[str, Any]], uow: UnitOfWork, tmp_path: Path
) -> None:
    root, expected = source
    for kind in ("stores", "products", "members"):
        import_file(uow, kind=kind, path=root / f"{kind}.parquet")
    rows = pq.read_table(root / "orders.parquet").to_pylist()
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({k: v for k, v in r.items() if v is not None}) for r in rows)
    )
    import_file(uow, kind="orders", path=jsonl)
    events = pq.read_table(root / "events.parquet").to_pylist()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    header = list(events[0])
    sheet.append(header)
    for r in events:
        sheet.append([r[c] for c in header])
    book.save(tmp_path / "events.xlsx")
    import_file(uow, kind="events", path=tmp_path / "events.xlsx")
    assert totals(uow.engine) == expected


def test_reimport_changes_nothing(source: tuple[Path, dict[str, Any]], uow: UnitOfWork) -> None:
    root, _ = source
    load_all(uow, root, ".parquet")
    before = dump(uow.engine)
    for kind in KINDS:
        report = import_file(uow, kind=kind, path=root / f"{kind}.csv")
        assert report.created == report.updated == 0, kind
    assert dump(uow.engine) == before


ORDERS_HEADER = (
    "channel,external_id,ordered_at,store,phone,email,sku,quantity,unit_price,discount,total"
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def test_a_bad_file_is_refused_whole_with_every_bad_row_named(
    uow: UnitOfWork, tmp_path: Path
) -> None:
    store(uow, "TPE-101")
    before = dump(uow.engine)
    bad = write(tmp_path / "orders.csv", "\n".join([
        ORDERS_HEADER,
        "pos,P-1,2026-01-05 10:00,TPE-101,0912-345-678,,SKU-1,1,100,0,100",
        "pos,P-2,2026-01-05 11:00,TPE-999,,,SKU-1,1,100,0,100",  # unknown store
        "web,W-1,2026-01-05 12:00,,,not-an-email,SKU-2,1,50,0,",  # bad e-mail
        "web,W-2,2026-01-05 13:00,,,,SKU-2,0,50,0,",  # quantity 0
        "web,W-3,2026-01-05 14:00,,,,SKU-2,1,50,0,49",  # total does not add up
        "web,W-4,tomorrow-ish,,,,SKU-2,1,50,0,",  # not a time
    ]))  # fmt: skip
    with pytest.raises(ImportRefused) as info:
        import_file(uow, kind="orders", path=bad)
    named = {(e.row, e.column) for e in info.value.errors}
    assert named == {
        (3, "store"), (4, "email"), (5, "quantity"), (6, "total"), (7, "ordered_at"),
    }  # fmt: skip
    assert dump(uow.engine) == before


def test_quarantine_lands_good_rows_and_keeps_the_bad(uow: UnitOfWork, tmp_path: Path) -> None:
    store(uow, "TPE-101")
    mixed = write(tmp_path / "orders.csv", "\n".join([
        ORDERS_HEADER,
        "pos,P-1,2026-01-05 10:00,TPE-101,0912-345-678,,SKU-1,1,100,0,",
        "pos,P-1,2026-01-05 10:00,TPE-101,,,SKU-2,2,30,10,150",  # second line of P-1
        "web,W-1,2026-01-05 12:00,,,not-an-email,SKU-2,1,50,0,",
        "web,W-2,2026-01-05 13:00,,,,SKU-2,1,50,0,",
        "web,W-2,2026-01-05 13:00,,,,SKU-3,1,-50,0,",  # a bad line rejects its whole order
    ]))  # fmt: skip
    rejects = tmp_path / "rejects.csv"
    report = import_file(uow, kind="orders", path=mixed, quarantine=rejects)
    assert (report.created, report.rejected_rows) == (1, 3)
    with rejects.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [(r["_row"], r["external_id"]) for r in rows] == [
        ("4", "W-1"),
        ("5", "W-2"),
        ("6", "W-2"),
    ]
    assert "email" in rows[0]["_errors"]
    assert "rejected with row 6" in rows[1]["_errors"]
    assert "unit_price" in rows[2]["_errors"]
    with uow.engine.connect() as conn:
        total = conn.execute(sa.text("SELECT total FROM orders WHERE external_id = 'P-1'")).scalar()
    assert total == 15000  # cents: 100 + 2 × 30 - 10


def test_rows_of_one_order_must_agree(uow: UnitOfWork, tmp_path: Path) -> None:
    split = write(tmp_path / "orders.csv", "\n".join([
        ORDERS_HEADER,
        "web,W-1,2026-01-05 10:00,,,a@example.com,SKU-1,1,100,0,",
        "web,W-1,2026-01-06 10:00,,,,SKU-2,1,100,0,",
    ]))  # fmt: skip
    with pytest.raises(ImportRefused) as info:
        import_file(uow, kind="orders", path=split)
    assert [(e.row, e.column) for e in info.value.errors] == [(3, "ordered_at")]


def test_unreadable_and_unknown_files_are_refused(uow: UnitOfWork, tmp_path: Path) -> None:
    cases = {
        "nothing.csv": "",
        "columns.csv": "sku,name,colour\nA,B,red\n",
        "broken.jsonl": '{"event_id": 1\n',
        "notes.txt": "hello",
    }
    for name, text in cases.items():
        with pytest.raises(ImportRefused):
            import_file(uow, kind="products", path=write(tmp_path / name, text))
    with pytest.raises(ImportRefused, match="no such file"):
        import_file(uow, kind="products", path=tmp_path / "missing.csv")
    with pytest.raises(ImportRefused, match="unknown kind"):
        import_file(uow, kind="vouchers", path=tmp_path / "nothing.csv")


def test_store_codes_and_skus_are_held_to_what_the_api_takes(
    uow: UnitOfWork, tmp_path: Path
) -> None:
    """A store's code and a product's SKU (the keys of `PUT /stores/{code}`, `/products/{sku}`)
    were only looked for in an import: one longer than its column was PostgreSQL's DataError at
    the write, SQLite kept it; a store code no path could name took no sale after."""
    before = dump(uow.engine)
    stores = write(tmp_path / "stores.csv", "\n".join([
        "code,name,region", "TPE-101,台北店,台北市", f"{'T' * 33},長,台北市", "台北 店,空白,台北市",
    ]))  # fmt: skip
    products = write(tmp_path / "products.csv", "\n".join([
        "sku,name,category,price", "SKU-1,茶,飲料,100", f"{'S' * 65},長,飲料,100", "茶-2,綠茶,飲料,90",
    ]))  # fmt: skip
    with pytest.raises(ImportRefused) as stores_refused:
        import_file(uow, kind="stores", path=stores)
    assert {(e.row, e.column) for e in stores_refused.value.errors} == {(3, "code"), (4, "code")}
    with pytest.raises(ImportRefused) as products_refused:
        import_file(uow, kind="products", path=products)
    assert [(e.row, e.column, e.message) for e in products_refused.value.errors] == [
        (3, "sku", "at most 64 characters")]  # fmt: skip
    assert dump(uow.engine) == before


def test_a_file_with_nul_is_refused_whole(uow: UnitOfWork, tmp_path: Path) -> None:
    """PostgreSQL's text cannot hold NUL: a member's name with one passed every check and was a
    DataError at the write (COPY), SQLite kept it. Every format is refused with where it is."""
    store(uow, "TPE-101")
    before = dump(uow.engine)
    csv_file = write(
        tmp_path / "orders.csv",
        "\n".join(
            [ORDERS_HEADER, "pos,P-1,2026-01-05 10:00,TPE-101,0912-345-678,,SKU-\x001,1,100,0,100"]
        ),
    )
    jsonl = tmp_path / "members.jsonl"
    jsonl.write_text(
        json.dumps({"name": "陳美玲", "phone": "0912-345-679"})
        + "\n"
        + json.dumps({"name": "陳\u0000美玲", "phone": "0912-345-678"})
        + "\n"
    )
    parquet = tmp_path / "members.parquet"
    pq.write_table(pa.table({"name": ["陳美玲", "林\x00志明"],
                             "phone": ["0912-345-679", "0912-345-678"]}), parquet)  # fmt: skip
    for kind, path, where in (("orders", csv_file, "line 2"), ("members", jsonl, "line 2"),
                              ("members", parquet, "row 3, column name")):  # fmt: skip
        with pytest.raises(ImportRefused, match=f"^{where} holds the NUL character"):
            import_file(uow, kind=kind, path=path)
    assert dump(uow.engine) == before
    # a backslash and the text u0000 is not NUL
    jsonl.write_text(json.dumps({"name": "陳\\u0000", "phone": "0912-345-678"}) + "\n")
    assert import_file(uow, kind="members", path=jsonl).created == 1


def test_big5_csv_from_excel_is_read(uow: UnitOfWork, tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", "sku,name,category,price\nTS-1,棉質短袖上衣,服飾,590\n", "cp950"
    )
    import_file(uow, kind="products", path=path)
    with uow.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM products")).scalar() == "棉質短袖上衣"


def test_formulas_are_neutralised_in_csv_exports(uow: UnitOfWork, tmp_path: Path) -> None:
    path = write(tmp_path / "members.csv", 'phone,name\n0912-345-678,"=HYPERLINK(""http://x"")"\n')
    import_file(uow, kind="members", path=path)
    out = tmp_path / "out.csv"
    export(uow.engine, "members", out)
    text = out.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "'+886912345678" in text
    # and the export reads back as the same values
    with uow.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM member_stats"))
        conn.execute(sa.text("DELETE FROM member_identifiers"))
        conn.execute(sa.text("DELETE FROM members"))
    import_file(uow, kind="members", path=out)
    with uow.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT name FROM members")).scalar() == '=HYPERLINK("http://x")'
        )


SHOPIFY = """Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,Lineitem sku,Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,Billing Name,Billing Street,Billing Address1,Billing Address2,Billing Company,Billing City,Billing Zip,Billing Province,Billing Country,Billing Phone,Shipping Name,Shipping Street,Shipping Address1,Shipping Address2,Shipping Company,Shipping City,Shipping Zip,Shipping Province,Shipping Country,Shipping Phone,Notes,Note Attributes,Cancelled at,Payment Method,Payment Reference,Refunded Amount,Vendor,Id,Tags,Risk Level,Source,Lineitem discount
#1001,Mei.Ling@Example.com,paid,2026-09-03 10:15:00 +0800,fulfilled,,yes,TWD,1080.00,60.00,51.43,1140.00,FALL100,100.00,黑貓宅急便,2026-09-03 10:14:00 +0800,2,經典棉T,490.00,,APP-0001,true,true,fulfilled,陳美玲,信義路五段7號,信義路五段7號,,,台北市,110,,TW,0912-345-678,陳美玲,信義路五段7號,信義路五段7號,,,台北市,110,,TW,0912345678,,,,Credit Card,,0.00,OMO,5550000001,,Low,web,0.00
#1001,,,,,,,,,,,,,,,,1,輕量保溫杯,200.00,,HOM-0002,true,true,fulfilled,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,
#1002,kevin@example.com,voided,,unfulfilled,,no,TWD,350.00,0.00,0.00,350.00,,0.00,,2026-09-04 21:00:00 +0800,1,馬克杯,350.00,,HOM-0003,true,true,,,,,,,,,,,,,,,,,,,,,,,,2026-09-04 22:00:00 +0800,,,,OMO,5550000002,,Low,web,0.00
"""


def test_a_shopify_orders_export_reads_as_orders(uow: UnitOfWork, tmp_path: Path) -> None:
    report = import_file(
        uow, kind="orders", path=write(tmp_path / "orders_export.csv", SHOPIFY), shape="shopify"
    )
    assert (report.rows, report.created) == (3, 2)
    with uow.engine.connect() as conn:
        orders = conn.execute(sa.text(
            "SELECT external_id, status, subtotal, discount_total, shipping_fee, total, ordered_at "
            "FROM orders ORDER BY external_id"
        )).all()  # fmt: skip
        contacts = conn.execute(
            sa.text("SELECT kind, value FROM order_contacts ORDER BY kind")
        ).all()
        lines = conn.execute(sa.text("SELECT count(*) FROM order_lines")).scalar()
    first, second = orders
    assert first[:6] == ("#1001", "completed", 118000, 10000, 6000, 114000)
    assert second[:2] == ("#1002", "cancelled")
    assert [tuple(c) for c in contacts] == [
        ("email", "mei.ling@example.com"), ("email", "kevin@example.com"), ("phone", "+886912345678"),
    ][:0] or sorted(tuple(c) for c in contacts) == sorted([
        ("email", "mei.ling@example.com"), ("email", "kevin@example.com"), ("phone", "+886912345678"),
    ])  # fmt: skip
    assert lines == 3


def test_a_big_shopify_export_read_in_runs_is_what_one_core_reads(tmp_path: Path) -> None:
    """Shopify's continuation rows (an order's later lines, its fields left empty) stay with
    their order when the rows are cut into runs, validated in a child and written as they come."""
    from omo.shared import forked

    if forked.cores() < 2:
        assert os.environ.get("CI") != "true", "CI machines have two cores"
        pytest.skip("needs two cores")
    header, *rows = SHOPIFY.strip().splitlines()
    body = [
        r.replace("#1001", f"#A{n}").replace("#1002", f"#B{n}") for n in range(1500) for r in rows
    ]
    path = write(tmp_path / "orders_export.csv", "\n".join([header, *body]))
    figures = []
    for cores in (2, 1):
        url = f"sqlite:///{tmp_path / f'db{cores}.sqlite'}"
        command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
        out = fresh_python(f"""
            import json
            from pathlib import Path
            from omo.db import UnitOfWork, make_engine
            from omo.settings import Settings
            from omo.transfer import orderfacts
            from omo.transfer.importer import import_file

            if {cores} == 1:
                orderfacts.PARALLEL_FROM = 10**9
            uow = UnitOfWork(make_engine(Settings(database_url={url!r})))
            report = import_file(uow, kind="orders", path=Path({str(path)!r}), shape="shopify")
            print(json.dumps([report.cores, report.created, report.rejected_rows]))
        """)
        engine = make_engine(Settings(database_url=url))
        with engine.connect() as conn:
            out.append(tuple(conn.execute(sa.text(
                "SELECT count(*), sum(total), sum(discount_total), "
                "(SELECT count(*) FROM order_lines), (SELECT count(*) FROM order_contacts) "
                "FROM orders"
            )).one()))  # fmt: skip
        engine.dispose()
        figures.append(out)
    assert figures[0][0] == 2 and figures[1][0] == 1
    assert figures[0][1:] == figures[1][1:]
    assert figures[0][1:3] == [3000, 0] and figures[0][3][3] == 4500  # lines: 2 + 1 per pair


SHOPEE_HEADER = [
    "訂單編號", "訂單狀態", "買家帳號", "訂單成立日期", "商品名稱", "商品選項名稱", "商品原價",
    "商品活動價格", "數量", "主商品貨號", "商品選項貨號", "買家支付運費", "訂單總金額", "收件者姓名",
    "收件者電話", "收件地址",
]  # fmt: skip


def test_a_shopee_order_report_reads_as_orders(uow: UnitOfWork, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(SHOPEE_HEADER)
    sheet.append(["2409031ABCDEF", "已完成", "meiling88", "2026-09-03 10:14", "經典棉T", "白/M", 590, 490,
                  2, "APP-0001", "APP-0001-WM", 60, 990, "陳美玲", "******678", "台北市信義區信義路五段7號"])  # fmt: skip
    sheet.append(["2409031ABCDEF", "已完成", "meiling88", "2026-09-03 10:14", "保溫杯", "", 250, 200,
                  1, "HOM-0002", "", 60, 990, "陳美玲", "******678", "台北市信義區信義路五段7號"])  # fmt: skip
    sheet.append(["2409041XYZ", "不成立", "kevin_w", "2026-09-04 21:00", "馬克杯", "", 350, 350,
                  1, "HOM-0003", "", 0, 350, "王凱文", "0922333444", "高雄市"])  # fmt: skip
    book.save(tmp_path / "Order.all.xlsx")
    report = import_file(uow, kind="orders", path=tmp_path / "Order.all.xlsx", shape="shopee")
    assert report.created == 2
    with uow.engine.connect() as conn:
        orders = conn.execute(sa.text(
            "SELECT external_id, channel, status, subtotal, discount_total, shipping_fee, total "
            "FROM orders ORDER BY external_id"
        )).all()  # fmt: skip
        contacts = conn.execute(sa.text("SELECT kind, namespace, value FROM order_contacts")).all()
    # 2 × 490 + 200 = 1180 of goods + 60 shipping; the buyer paid 990: 250 of vouchers/coins
    assert tuple(orders[0]) == ("2409031ABCDEF", "shopee", "completed", 118000, 25000, 6000, 99000)
    assert orders[1][2] == "cancelled"
    assert sorted(tuple(c) for c in contacts) == [
        ("marketplace_buyer", "shopee", "kevin_w"),
        ("marketplace_buyer", "shopee", "meiling88"),
        ("phone", "", "+886922333444"),  # the masked phone is not an identifier
    ]


def test_shapes_refuse_files_that_are_not_theirs(uow: UnitOfWork, tmp_path: Path) -> None:
    path = write(tmp_path / "orders.csv", ORDERS_HEADER + "\n")
    for shape in ("shopify", "shopee"):
        with pytest.raises(ImportRefused, match="not a"):
            import_file(
                uow, kind="orders", path=write(tmp_path / "o.csv", "a,b\n1,2\n"), shape=shape
            )
    with pytest.raises(ImportRefused, match="holds orders"):
        import_file(uow, kind="members", path=path, shape="shopify")


def test_imported_members_take_their_guest_orders_and_events(
    uow: UnitOfWork, tmp_path: Path
) -> None:
    guest_orders = write(tmp_path / "orders.csv", "\n".join([
        ORDERS_HEADER,
        "web,W-1,2026-01-05 10:00,,,mei@example.com,SKU-1,1,100,0,",
        "web,W-2,2026-01-06 10:00,,0922-000-111,,SKU-1,2,100,0,",
        "web,W-3,2026-01-07 10:00,,,nobody@example.com,SKU-1,1,100,0,",
    ]))  # fmt: skip
    import_file(uow, kind="orders", path=guest_orders)
    events = write(tmp_path / "events.jsonl", json.dumps({
        "event_id": "E-1", "kind": "line_follow", "occurred_at": "2026-01-04T10:00:00+08:00",
        "channel": "line", "line_id": "U" + "a" * 32,
    }))  # fmt: skip
    import_file(uow, kind="events", path=events)
    people = write(tmp_path / "members.csv", "\n".join([
        "phone,email,line_id,name",
        f"0912-000-001,MEI@example.com,U{'a' * 32},陳美玲",
        "0922-000-111,,,王大明",
        "0933-000-222,,,林小華",
    ]))  # fmt: skip
    report = import_file(uow, kind="members", path=people)
    assert report.created == 3
    with uow.engine.connect() as conn:
        owners = dict(conn.execute(sa.text(
            "SELECT o.external_id, m.name FROM orders o LEFT JOIN members m ON m.id = o.member_id"
        )).all())  # fmt: skip
        stats = dict(conn.execute(sa.text(
            "SELECT m.name, s.total_spend FROM member_stats s JOIN members m ON m.id = s.member_id"
        )).all())  # fmt: skip
        follow = conn.execute(sa.text(
            "SELECT m.name FROM events e JOIN members m ON m.id = e.member_id"
        )).scalar()  # fmt: skip
    assert owners == {"W-1": "陳美玲", "W-2": "王大明", "W-3": None}
    assert stats == {"陳美玲": 10000, "王大明": 20000, "林小華": 0}
    assert follow == "陳美玲"


def test_rows_naming_one_person_become_one_member(uow: UnitOfWork, tmp_path: Path) -> None:
    people = write(tmp_path / "members.csv", "\n".join([
        "phone,email,name,city",
        "0912-000-001,,陳美玲,",
        "+886 912 000 001,mei@example.com,,台北市",  # the same phone: updates, adds the e-mail
        ",mei@example.com,,新北市",  # moved
    ]))  # fmt: skip
    report = import_file(uow, kind="members", path=people)
    assert (report.created, report.updated) == (1, 2)
    with uow.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, city FROM members")).all()
        idents = conn.execute(sa.text("SELECT count(*) FROM member_identifiers")).scalar()
    assert [tuple(r) for r in rows] == [("陳美玲", "新北市")]
    assert idents == 2


def _orders_csv(n: int, bad: dict[int, str] | None = None) -> str:
    """n orders (every third with two lines, most with a phone in one of three spellings);
    `bad`: order number -> the row to put in place of that order's first row."""
    rows = [ORDERS_HEADER]
    for i in range(n):
        phone = f"09{i % 97:08d}"
        spelled = [phone, f"{phone[:4]}-{phone[4:7]}-{phone[7:]}", f"+886{phone[1:]}"][i % 3]
        head = (
            f"pos,P-{i},2026-01-05 10:{i % 60:02d},TPE-101,{spelled},"
            if i % 2
            else f"web,W-{i},2026-01-05 11:{i % 60:02d},,{'' if i % 5 else spelled},c{i}@x.tw"
        )
        rows.append((bad or {}).get(i) or f"{head},SKU-{i % 7},1,{100 + i},0,")
        if i % 3 == 0:
            rows.append(f"{head},SKU-9,2,30,10,")
    return "\n".join(rows)


def test_orders_validated_on_two_cores_are_what_one_core_gives(tmp_path: Path) -> None:
    from omo.shared import forked

    if forked.cores() < 2:
        assert os.environ.get("CI") != "true", "CI machines have two cores"
        pytest.skip("needs two cores")
    bad = {
        3: "pos,P-3,2026-01-05 10:03,TPE-101,,not-an-email,SKU-1,1,100,0,",
        150: "web,W-150,2026-01-05 11:30,,0912,c150@x.tw,SKU-1,1,100,0,",  # phone too short
        151: "pos,P-151,2026-01-05 10:31,TPE-101,,,SKU-1,0,100,0,",  # quantity 0
        299: "pos,P-299,2026-01-05 10:59,TPE-101,,,SKU-1,1,100,0,99",  # total does not add up
    }
    path = write(tmp_path / "orders.csv", _orders_csv(300, bad))
    # in a fresh interpreter: forked forks only from a process with one thread
    out = fresh_python(f"""
        import json, os
        from pathlib import Path
        from zoneinfo import ZoneInfo
        from omo.shared import forked
        from omo.transfer.formats import read_table
        from omo.transfer.orderfacts import read_orders

        table = read_table(Path({str(path)!r}), "csv")
        pids = set()
        spread = forked.iter_runs

        def watched(work, runs, n):
            for pid, result in spread(lambda run, k: (os.getpid(), work(run, k)), runs, n):
                pids.add(pid)
                yield result

        def seen(read):
            # every record asked for: one a child shaped is shaped again here
            valid = [(v.rows, v.model, v.idents, v.digest, v.record) for v in read.valid]
            return valid, sorted(read.errors, key=lambda e: (e.row, e.column)), read.record_rows

        forked.iter_runs = watched
        tz = ZoneInfo("Asia/Taipei")
        one = read_orders(table, "omo", tz, "TW", workers=1)
        two = read_orders(table, "omo", tz, "TW", workers=2)
        print(json.dumps([
            seen(two) == seen(one), len(pids), two.cores, len(two.valid),
            sorted(e.row for e in two.errors),
            [one.record_rows[i][0] for i in {sorted(bad)!r}],
        ]))
    """)
    same, processes, cores, n_valid, error_rows, bad_rows = out
    assert same and processes == cores == 2
    assert n_valid == 296
    assert error_rows == bad_rows


def test_records_shaped_in_a_child_are_shaped_again_when_needed(tmp_path: Path) -> None:
    """The second half of the file is shaped in a child, which sends back only facts and row
    numbers: an error the database check finds there, and an order there that takes the
    identity use case, need its record here, shaped again from the same rows. An order whose
    rows lie apart in the file is joined as on one core."""
    from omo.shared import forked

    if forked.cores() < 2:
        assert os.environ.get("CI") != "true", "CI machines have two cores"
        pytest.skip("needs two cores")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    uow = UnitOfWork(engine)
    store(uow, "TPE-101")
    from tests.factories import enrol

    first = enrol(uow, phone="0911-222-333").member.id
    second = enrol(uow, identifiers=[{"kind": "email", "value": "c2972@x.tw"}]).member.id
    engine.dispose()
    late_store = {2950: "pos,P-2950,2026-01-05 10:03,TPE-999,,,SKU-1,1,100,0,"}
    bad = write(tmp_path / "bad.csv", _orders_csv(3000, late_store))
    text = _orders_csv(3000)
    one_person = "web,W-2972,2026-01-05 11:32,,0911222333,c2972@x.tw"  # the two members' ids
    good = write(tmp_path / "good.csv", text.replace("web,W-2972,2026-01-05 11:32,,,c2972@x.tw",
                                                     one_person))  # fmt: skip
    lines = text.replace(",W-", ",X-").replace(",P-", ",Q-").splitlines()
    apart = write(tmp_path / "apart.csv", "\n".join([*lines, lines[1].replace("SKU-0", "SKU-8")]))
    out = fresh_python(f"""
        import json
        from pathlib import Path
        from omo.db import UnitOfWork, make_engine
        from omo.settings import Settings
        from omo.transfer.importer import ImportRefused, import_file

        uow = UnitOfWork(make_engine(Settings(database_url={url!r})))
        try:
            import_file(uow, kind="orders", path=Path({str(bad)!r}))
            refused = []
        except ImportRefused as exc:
            refused = [[e.row, e.column, e.message] for e in exc.errors]
        report = import_file(uow, kind="orders", path=Path({str(good)!r}))
        joined = import_file(uow, kind="orders", path=Path({str(apart)!r}))
        print(json.dumps([refused, report.cores, report.created, report.bulk,
                          joined.cores, joined.records, joined.rejected_rows]))
    """)
    refused, cores, created, bulk, joined_cores, joined_records, rejected = out
    row = _orders_csv(3000, late_store).splitlines().index(late_store[2950]) + 1
    assert refused == [[row, "store", "no store with code 'TPE-999'"]]
    assert (cores, created, bulk) == (2, 3000, 2999)  # W-2972 joined two members
    # the last row adds a line to X-0, which opens the file: shaped whole, validated on 2 cores
    assert (joined_cores, joined_records, rejected) == (2, 3000, 0)
    with make_engine(Settings(database_url=url)).connect() as conn:
        owner = conn.execute(
            sa.text("SELECT member_id FROM orders WHERE external_id = 'W-2972'")
        ).scalar_one()
        merged = conn.execute(
            sa.text("SELECT merged_into_id FROM members WHERE id = :m"), {"m": second}
        ).scalar_one()
        x0 = conn.execute(
            sa.text(
                "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id "
                "WHERE o.external_id = 'X-0'"
            )
        ).scalar_one()
    assert (owner, merged, x0) == (first, first, 3)


def test_a_file_validated_in_parallel_is_refused_whole_or_imported_whole(
    uow: UnitOfWork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omo.transfer import orderfacts

    # the parallel path for a small file (forked when this process has one thread)
    monkeypatch.setattr(orderfacts, "PARALLEL_FROM", 10)
    store(uow, "TPE-101")
    before = dump(uow.engine)
    late = {190: "web,W-190,2026-01-05 11:10,,,,SKU-1,1,1.001,0,"}  # in the second half
    with pytest.raises(ImportRefused) as info:
        import_file(uow, kind="orders", path=write(tmp_path / "bad.csv", _orders_csv(200, late)))
    assert [(e.column, e.message) for e in info.value.errors] == [
        ("unit_price", "money has at most two decimal places")
    ]
    assert dump(uow.engine) == before
    report = import_file(uow, kind="orders", path=write(tmp_path / "ok.csv", _orders_csv(200)))
    assert (report.created, report.bulk, report.rejected_rows) == (200, 200, 0)
    expected = sum(100 + i + (50 if i % 3 == 0 else 0) for i in range(200)) * 100
    with uow.engine.connect() as conn:
        n, total = conn.execute(sa.text("SELECT count(*), sum(total) FROM orders")).one()
        contacts = conn.execute(sa.text("SELECT count(*) FROM order_contacts")).scalar_one()
    assert (n, total) == (200, expected)
    assert contacts == 100 + 100 + 20  # pos: a phone each; web: an e-mail each, every 5th a phone


def test_orders_that_join_two_members_go_through_the_use_case(
    uow: UnitOfWork, tmp_path: Path
) -> None:
    """The slow path: an order whose phone names one member and e-mail another is recorded by
    the same use case as POST /orders (which merges them); the rest take the bulk path."""
    from tests.factories import enrol

    store(uow, "TPE-101")
    first = enrol(uow, phone="0912-345-678").member.id
    second = enrol(uow, identifiers=[{"kind": "email", "value": "ming@example.com"}]).member.id
    path = write(tmp_path / "orders.csv", "\n".join([
        ORDERS_HEADER,
        "web,W-1,2026-01-05 10:00,,0912345678,MING@example.com,SKU-1,2,150,0,",
        "web,W-1,2026-01-05 10:00,,,,SKU-2,1,40,0,",
        "pos,P-1,2026-01-05 11:00,TPE-101,0912345678,,SKU-1,1,150,0,",
        "web,W-2,2026-01-05 12:00,,,x@example.com,SKU-3,1,99,0,",
    ]))  # fmt: skip
    report = import_file(uow, kind="orders", path=path)
    assert (report.created, report.bulk) == (3, 2)
    with uow.engine.connect() as conn:
        owners = dict(conn.execute(sa.text("SELECT external_id, member_id FROM orders")).all())
        merged = conn.execute(
            sa.text("SELECT status, merged_into_id FROM members WHERE id = :m"), {"m": second}
        ).one()
        w1 = conn.execute(
            sa.text("SELECT total FROM orders WHERE external_id = 'W-1'")
        ).scalar_one()
    assert owners == {"W-1": first, "P-1": first, "W-2": None}
    assert tuple(merged) == ("merged", first)
    assert w1 == 34000  # cents: 2 × 150 + 40, from the order validated again for the use case


def _a_till_records_p7_after_the_first_check(
    uow: UnitOfWork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> list[int]:
    """Right after the import's first check against the database, another writer records P-7
    (its rows of `text`, as a one-order import). Gives [orders that writer created] once it has."""
    from omo.transfer import importer

    lines = text.splitlines()
    one = write(tmp_path / "one.csv", "\n".join([lines[0], *[r for r in lines if ",P-7," in r]]))
    checked = importer.check_against_database
    interleaved: list[int] = []

    def check_then_a_till_records_p7(*args: Any, **kwargs: Any) -> Any:
        errors = checked(*args, **kwargs)
        if not interleaved:  # the first check only (the one-order import checks too)
            interleaved.append(0)
            interleaved[0] = import_file(uow, kind="orders", path=one).created
        return errors

    monkeypatch.setattr(importer, "check_against_database", check_then_a_till_records_p7)
    return interleaved


def test_an_order_recorded_between_the_check_and_the_write_is_not_written_twice(
    uow: UnitOfWork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write trusts the check's view of which orders the database holds; an order another
    writer (a till, a second import) records in between fails the insert on its unique key, and
    the chunk is written again, asking the database this time."""
    store(uow, "TPE-101")
    text = _orders_csv(40)
    path = write(tmp_path / "orders.csv", text)
    interleaved = _a_till_records_p7_after_the_first_check(uow, tmp_path, monkeypatch, text)
    report = import_file(uow, kind="orders", path=path)
    assert interleaved == [1]
    assert (report.created, report.unchanged) == (39, 1)
    with uow.engine.connect() as conn:
        n, distinct = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT external_id) FROM orders")
        ).one()
        lines_of_p7 = conn.execute(
            sa.text(
                "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id "
                "WHERE o.external_id = 'P-7'"
            )
        ).scalar_one()
    assert (n, distinct, lines_of_p7) == (40, 40, 1)


@pytest.fixture
def two_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Orders read in two runs, the first written while the second is validated. Here (a
    process with threads) the second run is validated after the first is written rather than
    in a child, but the import takes the same steps. Gives the early writes made."""
    from omo.transfer import importer, orderfacts, writers

    made: list[Any] = []

    class Seen(writers.EarlyOrders):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(orderfacts, "workers_for", lambda rows: 2)
    monkeypatch.setattr(importer, "EarlyOrders", Seen)
    return made


def test_an_early_write_is_rolled_back_when_a_later_run_is_bad(
    uow: UnitOfWork, tmp_path: Path, two_runs: list[Any]
) -> None:
    store(uow, "TPE-101")
    before = dump(uow.engine)
    late = {
        190: "web,W-190,2026-01-05 11:10,,,,SKU-1,1,1.001,0,",
        191: "pos,P-191,2026-01-05 11:11,TPE-999,,,SKU-1,1,100,0,",
    }
    with pytest.raises(ImportRefused) as info:
        import_file(uow, kind="orders", path=write(tmp_path / "bad.csv", _orders_csv(200, late)))
    assert [(e.column, e.message) for e in info.value.errors] == [
        ("unit_price", "money has at most two decimal places"),
        ("store", "no store with code 'TPE-999'"),
    ]
    assert [len(e.written) for e in two_runs] == [0]  # written, then rolled back
    assert dump(uow.engine) == before
    shown: list[int] = []
    report = import_file(
        uow, kind="orders", path=write(tmp_path / "ok.csv", _orders_csv(200)),
        progress=shown.append,
    )  # fmt: skip
    assert (report.created, report.unchanged, report.bulk, report.cores) == (200, 0, 200, 2)
    assert len(shown) > 1 and sum(shown) == report.rows  # run by run, every row once
    assert len(two_runs[1].written) == 200  # every order, run by run, as validated
    with uow.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    assert n == 200


def test_quarantine_with_an_early_write_lands_the_good_rows_of_every_run(
    uow: UnitOfWork, tmp_path: Path, two_runs: list[Any]
) -> None:
    store(uow, "TPE-101")
    bad = {
        3: "pos,P-3,2026-01-05 10:03,TPE-999,,,SKU-1,1,100,0,",  # first run: unknown store
        180: "web,W-180,2026-01-05 11:00,,,not-an-email,SKU-1,1,100,0,",  # second run
    }
    rejects = tmp_path / "rejects.csv"
    report = import_file(
        uow, kind="orders", path=write(tmp_path / "o.csv", _orders_csv(200, bad)),
        quarantine=rejects,
    )  # fmt: skip
    assert (report.created, report.unchanged, report.cores) == (198, 0, 2)
    assert len(two_runs) == 1 and len(two_runs[0].written) > 50  # the first run, less P-3
    with rejects.open(encoding="utf-8-sig") as f:
        rejected = {r["external_id"] for r in csv.DictReader(f)}
    with uow.engine.connect() as conn:
        ids = {e for (e,) in conn.execute(sa.text("SELECT external_id FROM orders"))}
    assert rejected == {"P-3", "W-180"}  # W-180's second line is rejected with it
    assert len(ids) == 198 and not ids & rejected


def test_an_early_write_that_loses_a_race_is_written_with_the_rest(
    uow: UnitOfWork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_runs: list[Any]
) -> None:
    """P-7 (first run) is recorded by another writer after the first run is checked: the early
    write fails on its unique key and is undone, and the first run is written with the rest."""
    store(uow, "TPE-101")
    text = _orders_csv(200)
    interleaved = _a_till_records_p7_after_the_first_check(uow, tmp_path, monkeypatch, text)
    shown: list[int] = []
    report = import_file(
        uow, kind="orders", path=write(tmp_path / "o.csv", text), progress=shown.append
    )
    assert interleaved == [1]
    assert [len(e.written) for e in two_runs] == [0]  # the early write lost the race
    assert sum(shown) == report.rows  # what it had shown was taken back
    assert (report.created, report.unchanged) == (199, 1)
    with uow.engine.connect() as conn:
        n, distinct = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT external_id) FROM orders")
        ).one()
    assert (n, distinct) == (200, 200)


def test_an_early_write_leaves_members_rows_unlocked_until_the_file_is_valid(
    uow: UnitOfWork, tmp_path: Path, two_runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orders of known members written while the file is still validated leave their members'
    stats to be rebuilt just before the commit, and an order that joins two members to the use
    case after it: on PostgreSQL a till selling to one of them meanwhile does not wait for the
    import. The figures at the end are those of writing after validation."""
    from omo.transfer import importer
    from tests.factories import enrol

    store(uow, "TPE-101")
    ming = enrol(uow, phone="0900000001").member.id  # P-1's phone (and more orders')
    other = enrol(uow, identifiers=[{"kind": "email", "value": "c40@x.tw"}]).member.id
    # W-40: ming's phone and the other member's e-mail: the use case merges them
    text = re.sub(r"(?m)^(web,W-40,[^,]*,[^,]*,)[^,]*,", r"\g<1>0900000001,", _orders_csv(200))
    touched: list[str] = []

    class Watched(importer.EarlyOrders):  # type: ignore[name-defined,misc]
        def add(self, valid: list[Any]) -> None:
            super().add(valid)
            if uow.engine.dialect.name != "postgresql" or not self.deferred.counted:
                return
            with uow.engine.connect() as till:  # another connection, as a till's would be
                till.exec_driver_sql("SET lock_timeout = '300ms'")
                till.execute(
                    sa.text("UPDATE member_stats SET updated_at = updated_at WHERE member_id = :m"),
                    {"m": ming},
                )
                till.commit()
            touched.append("stats row free")

    monkeypatch.setattr(importer, "EarlyOrders", Watched)
    report = import_file(uow, kind="orders", path=write(tmp_path / "o.csv", text))
    assert (report.created, report.bulk) == (200, 199)
    assert len(two_runs) == 1 and len(two_runs[0].written) == 199  # W-40 was left to after
    if uow.engine.dialect.name == "postgresql":
        assert touched
    with uow.engine.connect() as conn:
        mine = conn.execute(
            sa.text("SELECT count(*), sum(total) FROM orders WHERE member_id = :m"), {"m": ming}
        ).one()
        stats = conn.execute(
            sa.text("SELECT order_count, total_spend FROM member_stats WHERE member_id = :m"),
            {"m": ming},
        ).one()
        merged = conn.execute(
            sa.text("SELECT merged_into_id FROM members WHERE id = :m"), {"m": other}
        ).scalar_one()
    assert tuple(stats) == tuple(mine) and mine[0] == 3  # P-1, P-195 and W-40
    assert merged == ming
