"""Server time of each admin UI page on a demo world (goal: under 300 ms at 5,000 people).

The world is built once (worlds.py) and scored (`omo refresh`, journeys seeded); then, in this
process, the app answers each page through the ASGI interface (no network): every page 15
times after a warm-up, median and slowest printed, beside a baseline in the same run — the
/healthz probe, one `SELECT 1` — so machines compare by ratio.

    python bench/ui.py [--people 5000] [--workdir var/bench]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from worlds import ROOT, world

RUNS = 15
PASSWORD = "bench password 123"


def timed(call: Any, runs: int = RUNS) -> tuple[float, float]:
    call()  # warm-up: templates compiled, caches filled
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = call()
        seconds.append(time.perf_counter() - started)
        assert answer.status_code < 400, (answer.status_code, answer.text[:300])
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    opts = ap.parse_args()
    opts.workdir.mkdir(parents=True, exist_ok=True)
    db, _ = world(opts.workdir, opts.people)
    url = f"sqlite:///{db}"
    omo = str(Path(sys.executable).parent / "omo")
    env = {"OMO_DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    for step in (["refresh"], ["journeys", "seed"]):
        subprocess.run([omo, *step], check=True, env=env, capture_output=True)
    subprocess.run(
        [omo, "user", "create", "--username", "bench", "--role", "admin", "--password-stdin",
         "--if-missing"],
        check=True, env=env, input=PASSWORD + "\n", text=True, capture_output=True,
    )  # fmt: skip

    from fastapi.testclient import TestClient

    from omo.app import create_app
    from omo.settings import Settings
    from omo.web import card

    settings = Settings(database_url=url, secret_key="bench" * 8)
    app = create_app(settings)
    with TestClient(app) as client:
        login = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        client.post("/ui/login", data={"username": "bench", "password": PASSWORD, "csrf": csrf})
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/").text).group(1)  # type: ignore[union-attr]
        member = client.post("/ui/members", data={"q": "#42", "csrf": csrf})
        assert "/ui/members/42" in member.text, "member 42 is not in this world"
        phone = re.search(r"\+8869\d{8}", client.get("/ui/members/42").text)
        token = card.card_token("bench", 42)
        pages: list[tuple[str, Any]] = [
            ("/healthz (baseline)", lambda: client.get("/healthz")),
            ("dashboard", lambda: client.get("/ui/")),
            ("member search (phone)", lambda: client.post(
                "/ui/members", data={"q": phone.group(0) if phone else "#42", "csrf": csrf})),
            ("member search (name)", lambda: client.post(
                "/ui/members", data={"q": "陳", "csrf": csrf})),
            ("member profile", lambda: client.get("/ui/members/42")),
            ("segments", lambda: client.get("/ui/segments")),
            ("segment live count", lambda: client.post(
                "/ui/segments/count", data={"rule": "r >= 4 and spend > 3000", "csrf": csrf})),
            ("funnel + cohorts", lambda: client.get("/ui/funnel")),
            ("journeys", lambda: client.get("/ui/journeys")),
            ("journey report", lambda: client.get("/ui/journeys/birthday")),
            ("identity reviews", lambda: client.get("/ui/reviews")),
            ("settings", lambda: client.get("/ui/settings")),
            ("POS look-up by card", lambda: client.post(
                "/ui/pos", data={"action": "lookup", "q": token, "csrf": csrf, "store_id": "1"})),
            ("member card", lambda: client.get(f"/card/{token}")),
        ]  # fmt: skip
        print(f"\n{opts.people:,}-person demo world, SQLite, server time through ASGI "
              f"(median / slowest of {RUNS}, this machine, same run)")  # fmt: skip
        base = None
        for name, call in pages:
            median, slowest = timed(call)
            base = base or median
            print(f"  {name:26s} {median:7.1f} ms  {slowest:7.1f} ms  ×{median / base:6.1f}")
    app.state.engine.dispose()


if __name__ == "__main__":
    main()
