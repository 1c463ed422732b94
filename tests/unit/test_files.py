"""Files written whole (shared/files.py): a failed write leaves what was there."""

from __future__ import annotations

from pathlib import Path

import pytest

from omo.shared.files import written_whole


def test_a_write_that_fails_part_way_leaves_the_file_before_it(tmp_path: Path) -> None:
    target = tmp_path / "members.csv"
    target.write_text("the last good export")

    def export() -> None:
        with written_whole(target) as part:
            part.write_text("half of")
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        export()
    assert target.read_text() == "the last good export"
    assert [p.name for p in tmp_path.iterdir()] == ["members.csv"]


def test_a_write_that_ends_well_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "members.csv"
    with written_whole(target) as part:
        assert part.parent == target.parent and part.name.startswith(".")
        assert not target.exists()  # nobody reads the new file before it is whole
        part.write_text("all of it")
    assert target.read_text() == "all of it"
    assert [p.name for p in target.parent.iterdir()] == ["members.csv"]
