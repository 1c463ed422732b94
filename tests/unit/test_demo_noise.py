"""The demo's noise: a moved address is a new number on the same street, whatever the street's
suffix (an earlier version cut only at 路 or 街, so a move from a 大道 kept the old line whole)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from omo.demo.noise import Noise
from omo.demo.people import STREET_SUFFIX, STREETS

LINE = re.compile(r"^(?P<street>\D+)(?P<number>\d+)號(?:(?P<floor>\d+)樓)?$")


@pytest.mark.parametrize("suffix", STREET_SUFFIX)
def test_a_move_keeps_the_street_and_changes_only_number_and_floor(suffix: str) -> None:
    rng = np.random.default_rng(3)
    noise = Noise(set())
    for name in STREETS:
        home = ("臺北市", "大安區", f"{name}{suffix}123號")
        city, district, line = noise.moved(home, rng)
        shape = LINE.match(line)
        assert shape, line
        assert (city, district) == home[:2]
        assert shape["street"] == f"{name}{suffix}", line
        assert shape["floor"] is not None
        assert line.count("號") == 1
