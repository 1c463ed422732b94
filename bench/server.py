"""A real `omo serve` in a subprocess for benchmarks, and the HTTP client's helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def omo_serve(url: str) -> Iterator[str]:
    """Serve the database at `url`; yields the base URL once /healthz answers."""
    port = free_port()
    # benchmarks measure the server, not the per-key request budget
    env = {**os.environ, "OMO_DATABASE_URL": url, "OMO_RATE_LIMIT_PER_S": "1000000",
           "OMO_RATE_LIMIT_BURST": "1000000"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "omo.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("omo serve did not become healthy in 30 s")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
