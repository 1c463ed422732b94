"""`omo serve` as an operator runs it: several worker processes answer without Nagle's delay."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx

from omo.testing.serve import ServeProcess
from tests.conftest import migrate


def test_several_workers_answer_without_waiting_for_a_delayed_ack(tmp_path: Path) -> None:
    """uvicorn's shared socket left Nagle on for its workers' connections: each answer's body
    waited for the client's delayed ACK, ~40 ms, on an otherwise idle server."""
    url = f"sqlite:///{tmp_path / 'omo.sqlite'}"
    migrate(url)
    server = ServeProcess(url, workers=2).start()
    try:
        with httpx.Client(base_url=server.base) as client:
            for _ in range(20):
                client.get("/healthz")
            took = []
            for _ in range(40):
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                took.append(time.perf_counter() - started)
    finally:
        server.stop()
    assert statistics.median(took) < 0.02, f"median {statistics.median(took) * 1000:.1f} ms"
