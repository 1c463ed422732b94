"""Every text the admin UI's templates mark for translation has an entry in each language's
catalog (a missing one shows English in a Chinese page, which nothing else would catch)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import omo.web

WEB = Path(omo.web.__file__).parent
MARKED = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def marked() -> set[str]:
    found: set[str] = set()
    for page in (WEB / "templates").rglob("*.html"):
        found |= {a or b for a, b in MARKED.findall(page.read_text(encoding="utf-8"))}
    return found


@pytest.mark.parametrize("lang", ["zh-TW", "zh-CN"])
def test_each_marked_text_is_in_the_catalog(lang: str) -> None:
    texts = marked()
    assert len(texts) > 100  # the pattern still finds them
    with (WEB / "locale" / f"{lang}.po").open("rb") as f:
        catalog = read_po(f)
    have = {m.id for m in catalog if m.id and m.string}
    assert sorted(texts - have) == []


@pytest.mark.parametrize("lang", ["zh-TW", "zh-CN"])
def test_each_coupon_state_is_in_the_catalog(lang: str) -> None:
    """The member page shows a coupon's state through the catalog (`_(c.state)`)."""
    from typing import get_args

    from omo.coupons.rules import State

    with (WEB / "locale" / f"{lang}.po").open("rb") as f:
        have = {m.id for m in read_po(f) if m.id and m.string}
    assert set(get_args(State)) - have == set()


def test_a_code_without_an_entry_reads_as_words() -> None:
    """The English UI has no catalog: a code shown through `_()` (a coupon's state, a trigger)
    reads as words there; sentences and codes a catalog has are left to it."""
    from omo.web.i18n import gettext

    assert gettext("en", "not_yet_valid") == "not yet valid"
    assert gettext("en", "points_expiring") == "points expiring"
    assert gettext("en", "used") == "used"
    assert gettext("en", "Valid through") == "Valid through"
    assert gettext("en", "a_b c") == "a_b c"  # not a code: as it came
    assert gettext("zh-TW", "not_yet_valid") == "尚未生效"
