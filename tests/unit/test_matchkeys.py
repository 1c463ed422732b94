"""Comparison keys for Chinese and romanised names and Taiwanese addresses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omo.identity.matchkeys import (
    address_keys,
    address_keys_many,
    fold,
    name_keys,
    one_apart,
    phone_key,
)


def test_traditional_and_simplified_names_are_one_name() -> None:
    assert name_keys("陳美玲").cjk == name_keys("陈美玲").cjk == "陈美玲"
    assert name_keys("黃志偉").cjk == name_keys("黄志伟").cjk
    assert name_keys("劉德華") == name_keys("刘德华")


def test_full_width_half_width_and_spaces_fold() -> None:
    assert name_keys("陳 美玲").cjk == name_keys("陳美玲").cjk
    assert name_keys("ＣＨＥＮ　Ｍｅｉ－Ｌｉｎｇ").roman_wg == name_keys("Chen Mei-Ling").roman_wg
    assert fold("１２３號") == "123号"


def test_romanised_names_meet_the_chinese_name_in_any_order() -> None:
    chinese = name_keys("陳美玲")
    for spelled in ("Mei-Ling Chen", "CHEN MEI-LING", "Chen, Meiling", "meiling chen"):
        assert name_keys(spelled).roman_wg == chinese.roman_wg == "chen meiling", spelled
    # Hanyu pinyin spellings meet the pinyin key: 張 is Chang in Wade-Giles, Zhang in pinyin
    assert name_keys("Zhang Wei").roman_py == name_keys("張偉").roman_py == "wei zhang"
    assert name_keys("Wei Chang").roman_wg == name_keys("張偉").roman_wg == "chang wei"
    # ü written as u or v (pypinyin and many keyboards write v): 呂 Lü
    assert name_keys("Lu Hsiu-Chun").roman_wg == name_keys("呂秀俊").roman_wg
    assert name_keys("Lv Xiujun").roman_py == name_keys("呂秀俊").roman_py


def test_surnames_and_tokens() -> None:
    assert name_keys("歐陽娜娜").surname == "欧阳"
    assert name_keys("歐陽娜娜").given == "娜娜"
    assert name_keys("陳美玲").tokens == ("陈", "美玲")
    assert name_keys("Mei-Ling Chen").tokens == ("chen", "meiling")
    assert name_keys(None).cjk is None
    assert name_keys("   ").roman_py is None


def test_a_similar_character_keeps_the_names_one_character_apart() -> None:
    a, b = name_keys("陳淑玲").one_apart, name_keys("陳淑琳").one_apart
    assert a and b and set(a) & set(b)
    c = name_keys("林美華").one_apart
    assert c and not set(a) & set(c)


@given(
    st.text("陳林美玲淑琳華", min_size=2, max_size=4),
    st.text("陳林美玲淑琳華", min_size=2, max_size=4),
)
def test_one_apart_keys_meet_exactly_when_one_character_differs(x: str, y: str) -> None:
    kx, ky = one_apart(x), one_apart(y)
    assert kx and ky
    differ = len(x) == len(y) and sum(p != q for p, q in zip(x, y, strict=True)) <= 1
    assert bool(set(kx) & set(ky)) == differ


def test_address_keys() -> None:
    a = address_keys("臺北市", "大安區", "忠孝東路四段１００號５樓")
    assert (a.city, a.district, a.street, a.house_number) == ("台北市", "大安区", "忠孝东路", "100")
    assert a.line == "忠孝东路四段100号5楼"
    b = address_keys("台北市", "大安区", "忠孝東路四段100號5樓")
    assert a == b
    moved = address_keys("台北市", "大安區", "忠孝東街20號")
    assert a.street_one_apart and moved.street_one_apart
    assert set(a.street_one_apart) & set(moved.street_one_apart)
    assert address_keys(None, None, None).line is None
    assert address_keys("台中市", None, "中山大道1號").street == "中山大道"


def test_phone_key() -> None:
    assert phone_key("+886912345678") == "912345678"
    assert phone_key(None) is None
    assert phone_key("+886 912-345-678") == "912345678"  # not E.164: the slow path
    assert phone_key("+１２") == "１２"  # digits of any script count, as str.isdigit says


ADDRESS_TEXT = st.text(
    alphabet="臺台北市大安區忠孝東路四段１００號5樓 \n\t　巷弄街道陳", max_size=12
)


@given(
    st.lists(
        st.tuples(
            st.none() | st.sampled_from(["臺北市", "台中市", "　新北市 "]),
            st.none() | st.sampled_from(["大安區", "西屯区"]),
            st.none() | ADDRESS_TEXT,
        ),
        max_size=12,
    )
)
def test_address_keys_in_bulk_are_the_same_as_one_by_one(
    addresses: list[tuple[str | None, str | None, str | None]],
) -> None:
    """The snapshot folds every address line in one OpenCC call; newlines, blanks and empty
    lines must not shift one line's keys onto another's."""
    assert address_keys_many(addresses) == [address_keys(*a) for a in addresses]
