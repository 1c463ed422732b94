"""Files written whole: a reader never meets half of one, and a failed write leaves what was
there before (an export or a backup that fails on a full disk, say)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """A path beside `target` to write to: renamed onto `target` when the block ends well,
    removed when it does not. OSError (a folder that cannot be made, say) is the caller's."""
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield part
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
