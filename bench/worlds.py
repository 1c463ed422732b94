"""What the benchmarks share: demo worlds built once per size into the work directory with
`omo demo --people N --no-serve --truth DIR` (until 2026-11-01), then kept; and phases run in
their own process, so each one's peak memory is its own."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UNTIL = "2026-11-01"


def world(workdir: Path, people: int, purchases_per_year: float | None = None) -> tuple[Path, Path]:
    """The world's SQLite file and its ground-truth directory, built when missing and brought
    to the current schema either way. `purchases_per_year` (omo demo's option) makes a world
    of its own beside the default one."""
    name = f"{people}" if purchases_per_year is None else f"{people}-{purchases_per_year:g}py"
    db, truth = workdir / f"world-{name}.sqlite", workdir / f"truth-{name}"
    rate = [] if purchases_per_year is None else ["--purchases-per-year", f"{purchases_per_year:g}"]
    omo = [str(Path(sys.executable).parent / "omo")]
    if not db.exists():
        env = _env({"OMO_DATABASE_URL": f"sqlite:///{db}.building"})
        subprocess.run([*omo, "db", "upgrade"], check=True, env=env)
        started = time.perf_counter()
        subprocess.run(
            [*omo, "demo", "--people", str(people), "--no-serve", "--truth", str(truth),
             "--until", UNTIL, *rate],
            check=True, env=env,
        )  # fmt: skip
        print(f"built {people:,}-person world in {time.perf_counter() - started:,.0f} s")
        Path(f"{db}.building").rename(db)
    subprocess.run(
        [*omo, "db", "upgrade"], check=True, env=_env({"OMO_DATABASE_URL": f"sqlite:///{db}"})
    )
    return db, truth


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


def phase(script: str, name: str, *args: str) -> dict[str, Any]:
    """Run `script --phase name args…` in a fresh interpreter; its last line is JSON."""
    out = subprocess.run(
        [sys.executable, script, "--phase", name, *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def peak_mb() -> float:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm(db: Path) -> None:
    """Read the database file once, so no phase pays for a cold page cache."""
    with db.open("rb") as f:
        while f.read(1 << 24):
            pass
