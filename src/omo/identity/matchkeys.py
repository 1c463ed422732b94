"""Comparison keys for probabilistic matching (pure): what two spellings of one person's name or
address have in common once the writing system's noise is taken out.

Chinese names and addresses need their own care:
- full-width and half-width forms (ＡＢＣ, １２３) fold to one form (NFKC);
- traditional and simplified characters (陳/陈, 臺/台) fold to simplified (OpenCC t2s), so a name
  typed on a mainland keyboard compares equal to the one on the POS card;
- surname first in Chinese, given name first in a passport romanisation ("Mei-Ling Chen"), and
  marketplaces show either: a romanised key is the set {surname, given name} in both Wade-Giles
  (Taiwan's passports) and Hanyu pinyin, and a Latin name gives the same set of its own words;
- a similar-looking character mistyped at a till (玲/琳) changes one character out of three: the
  "one character apart" keys (each character masked in turn) meet for such a pair, with plain
  equality, on every SQL engine. (SQL edit distances count bytes, and a CJK character is three.)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import opencc
from pypinyin import Style, lazy_pinyin

_T2S = opencc.OpenCC("t2s")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE = re.compile(r"\s+")
_NOT_LETTER = re.compile(r"[^a-z]")
# two-character surnames (simplified): the rest of a name is the given name
COMPOUND_SURNAMES = frozenset(
    {"欧阳", "司马", "诸葛", "上官", "张简", "范姜", "东方", "长孙", "司徒", "夏侯", "皇甫", "慕容"}
)
# where a Taiwanese street name ends and the lane, alley and number begin
_STREET_END = re.compile(r"^(.+?(?:大道|路|街|道))")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class NameKeys:
    cjk: str | None  # the name in simplified characters, no spaces (None for a Latin name)
    surname: str | None
    given: str | None
    roman_wg: str | None  # "chen meiling": sorted {surname, given} in Wade-Giles
    roman_py: str | None  # the same in Hanyu pinyin
    one_apart: tuple[str, ...] | None  # the cjk name with each character masked in turn
    tokens: tuple[str, ...] | None  # surname and given name (cjk), or the words of a Latin name


EMPTY = NameKeys(None, None, None, None, None, None, None)


def fold(text: str) -> str:
    """Full-width to half-width, traditional to simplified, spaces collapsed."""
    return str(_T2S.convert(_spaced(text)))


def _spaced(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


@lru_cache(maxsize=200_000)
def name_keys(name: str | None) -> NameKeys:
    """The comparison keys of a person's name, Chinese or romanised."""
    if not name or not name.strip():
        return EMPTY
    text = fold(name)
    if _CJK.search(text):
        cjk = text.replace(" ", "")
        cut = 2 if cjk[:2] in COMPOUND_SURNAMES else 1
        surname, given = cjk[:cut], cjk[cut:]
        return NameKeys(
            cjk=cjk,
            surname=surname,
            given=given or None,
            roman_wg=_roman(surname, given, Style.WADEGILES),
            roman_py=_roman(surname, given, Style.NORMAL),
            one_apart=one_apart(cjk),
            tokens=(surname, given) if given else (surname,),
        )
    words = [_NOT_LETTER.sub("", w) for w in _latin(text).replace("-", "").split()]
    kept = tuple(sorted(w for w in words if w))
    key = " ".join(kept) or None
    return NameKeys(None, None, None, key, key, None, kept or None)


def _latin(text: str) -> str:
    # accents off (Lü → Lu); romanised Chinese never holds a v, but pypinyin and many keyboards
    # write ü as v, so v folds to u on both sides
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace(".", " ").replace(",", " ").replace("v", "u")


def _roman(surname: str, given: str, style: Style) -> str:
    return " ".join(sorted(s for s in (_syllables(surname, style), _syllables(given, style)) if s))


@lru_cache(maxsize=100_000)
def _syllables(chars: str, style: Style) -> str:
    """Surnames and given names repeat far more than whole names: each is romanised once."""
    spelled = "".join(_latin(p) for p in lazy_pinyin(chars, style=style, errors="ignore"))
    return _NOT_LETTER.sub("", spelled)


@lru_cache(maxsize=100_000)
def one_apart(text: str | None) -> tuple[str, ...] | None:
    """Keys two strings of equal length share exactly when they differ in at most one character."""
    if not text or len(text) < 2:
        return None
    return tuple(f"{text[:i]}*{text[i + 1 :]}" for i in range(len(text)))


class AddressKeys(NamedTuple):
    """One per member in a snapshot: a named tuple is built faster than a frozen dataclass
    (address_keys_many over 500k addresses of the 1M world: 2.25 → 1.70 s)."""

    city: str | None
    district: str | None
    line: str | None  # street, lane, number, floor: folded, no spaces
    street: str | None  # the street name alone (忠孝東路四段 → 忠孝东路)
    house_number: str | None  # the first number in the line (民生路114號11樓 → 114)
    street_one_apart: tuple[str, ...] | None


@lru_cache(maxsize=4_096)
def _place(name: str) -> str:
    return fold(name)  # cities and districts: a few hundred names, folded once each


def address_keys(city: str | None, district: str | None, line: str | None) -> AddressKeys:
    return _address(city, district, fold(line) if line else None)


def address_keys_many(
    addresses: Iterable[tuple[str | None, str | None, str | None]],
) -> list[AddressKeys]:
    """address_keys of each (city, district, line), with the lines' traditional characters
    folded in one OpenCC call: a million calls of it cost 1.7 s of a 1M-member snapshot."""
    places = list(addresses)
    spaced = [_spaced(line) if line else None for _, _, line in places]
    # a spaced line holds no newline (whitespace became single spaces), so the join splits back
    simplified = iter(str(_T2S.convert("\n".join(s for s in spaced if s is not None))).split("\n"))
    return [
        _address(city, district, None if s is None else next(simplified))
        for (city, district, _), s in zip(places, spaced, strict=True)
    ]


def _address(city: str | None, district: str | None, folded_line: str | None) -> AddressKeys:
    c = _place(city) if city else None
    d = _place(district) if district else None
    folded = folded_line.replace(" ", "") if folded_line is not None else None
    street = None
    if folded:
        m = _STREET_END.match(folded)
        street = m.group(1) if m else None
    number = _NUMBER.search(folded) if folded else None
    return AddressKeys(
        c or None, d or None, folded or None, street, number.group(0) if number else None,
        one_apart(street),
    )  # fmt: skip


def phone_key(e164: str | None) -> str | None:
    """The national significant number (digits after the country code) for digit-typo checks."""
    if not e164:
        return None
    plain = e164.removeprefix("+")
    # E.164 as phonenumbers writes it is ASCII digits after the plus: no scan of each character
    digits = (
        plain if plain.isascii() and plain.isdigit() else "".join(c for c in e164 if c.isdigit())
    )
    return digits[-9:] if len(digits) >= 9 else digits or None
