"""The noise real channel records carry: similar or simplified characters in names, a digit
wrong in a phone, a moved address, marketplace handles, phones and e-mails spelled differently.
Deterministic for a seed; a typo or handle is never someone else's identifier."""

from __future__ import annotations

import hashlib

import numpy as np

from omo.demo.people import romanised_handle

# similar-looking or same-sounding characters that staff and customers mix up in names
SIMILAR = {
    "玲": "琳", "琳": "玲", "慧": "惠", "惠": "慧", "偉": "瑋", "瑋": "偉", "志": "智",
    "智": "志", "明": "銘", "銘": "明", "婷": "亭", "亭": "婷", "雅": "亞", "怡": "宜",
    "宜": "怡", "芬": "芳", "芳": "芬", "珊": "姍", "宏": "鴻", "鴻": "宏", "傑": "杰",
    "華": "樺", "豪": "濠", "君": "均", "佩": "珮", "淑": "叔", "嘉": "家", "家": "嘉",
}  # fmt: skip
SIMPLIFIED = {
    "陳": "陈", "黃": "黄", "張": "张", "劉": "刘", "楊": "杨", "鄭": "郑", "謝": "谢",
    "賴": "赖", "許": "许", "蘇": "苏", "葉": "叶", "呂": "吕", "潘": "潘", "傑": "杰",
    "偉": "伟", "華": "华", "慧": "慧", "瑋": "玮", "豪": "豪", "婷": "婷", "麗": "丽",
    "鳳": "凤", "國": "国", "龍": "龙", "嬌": "娇", "雲": "云", "榮": "荣", "強": "强",
}  # fmt: skip


class Noise:
    def __init__(self, taken_phones: set[int]) -> None:
        self.taken_phones = taken_phones  # the 8 digits after 09 of every number in use
        self.taken_handles: set[str] = set()

    def noisy(
        self, name: str, rng: np.random.Generator, typo: float, simplified: float = 0.0
    ) -> str:
        if rng.random() < typo:
            chars = list(name)
            spots = [n for n, c in enumerate(chars) if c in SIMILAR]
            if spots:
                n = spots[int(rng.integers(len(spots)))]
                chars[n] = SIMILAR[chars[n]]
                name = "".join(chars)
        if simplified and rng.random() < simplified:
            name = "".join(SIMPLIFIED.get(c, c) for c in name)
        return name

    def handle(self, name: str, rng: np.random.Generator) -> str:
        """A marketplace username as people choose them: their name and a few digits."""
        base = romanised_handle(name).replace(".", "_")
        while True:
            handle = f"{base}{int(rng.integers(0, 10_000)):04d}"
            if handle not in self.taken_handles:
                self.taken_handles.add(handle)
                return handle
            base += str(int(rng.integers(0, 10)))

    def mistyped(self, phone: str, rng: np.random.Generator) -> str | None:
        """The phone with one digit wrong, unless that number is taken (someone's real one, or
        another typo): one number never names two people."""
        digits = list(phone)
        spot = int(rng.integers(5, len(digits)))
        digits[spot] = str((int(digits[spot]) + int(rng.integers(1, 10))) % 10)
        typo = "".join(digits)
        if int(typo[5:]) in self.taken_phones:
            return None
        self.taken_phones.add(int(typo[5:]))
        return typo

    def moved(self, home: tuple[str, str, str], rng: np.random.Generator) -> tuple[str, str, str]:
        """Moved house on the same street: a new number and a floor. The street is what comes
        before the number (people.address writes street + number + 號), whatever it ends in:
        路, 街 or 大道."""
        city, district, line = home
        street = line[: next((n for n, ch in enumerate(line) if ch.isdigit()), len(line))]
        return (
            city,
            district,
            f"{street}{int(rng.integers(1, 400))}號{int(rng.integers(2, 15))}樓",
        )


def token(text: str, length: int) -> str:
    """A stable pseudo-random hex id derived from text (ids, not secrets)."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:length]


def line_id(seed: int, person: int) -> str:
    return "U" + token(f"{seed}:line:{person}", 32)


def spell_phone(phone: str, rng: np.random.Generator) -> str:
    local = "0" + phone[4:]
    shapes = [
        local,
        f"{local[:4]}-{local[4:7]}-{local[7:]}",
        f"+886 {phone[4:]}",
        f"{local[:4]} {local[4:]}",
    ]
    return shapes[int(rng.integers(len(shapes)))]


def spell_email(email: str, rng: np.random.Generator) -> str:
    return (
        email.upper()
        if rng.random() < 0.1
        else (email.capitalize() if rng.random() < 0.2 else email)
    )
