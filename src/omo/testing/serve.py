"""A real `omo serve` in a subprocess (benchmarks, load and fault tests) that can be killed
and started again on the same port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from omo.testing.postgres import free_port

__all__ = ["ServeProcess", "free_port", "omo_serve"]


class ServeProcess:
    """`omo serve` on `url`'s database; the per-key request budget is lifted (the drivers
    measure the server, not the budget) and the in-process scheduler is off."""

    def __init__(self, url: str, *, workers: int = 1, log: str | None = None) -> None:
        self.url, self.workers, self.log = url, workers, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_s: float = 30) -> ServeProcess:
        env = {**os.environ, "OMO_DATABASE_URL": self.url, "OMO_RATE_LIMIT_PER_S": "1000000",
               "OMO_RATE_LIMIT_BURST": "1000000"}  # fmt: skip
        if self.log:
            with open(self.log, "ab") as out:  # the child keeps its own descriptor
                self.proc = self._spawn(env, out)
        else:
            self.proc = self._spawn(env, subprocess.DEVNULL)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"omo serve did not become healthy in {wait_s:.0f} s")
            time.sleep(0.1)

    def _spawn(self, env: dict[str, str], out: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "omo.cli", "serve", "--port", str(self.port),
             "--workers", str(self.workers), "--jobs-every", "0"],
            env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: no shutdown, no finished requests."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


@contextmanager
def omo_serve(url: str, *, workers: int = 1) -> Iterator[str]:
    """Serve the database at `url`; yields the base URL once /healthz answers."""
    server = ServeProcess(url, workers=workers).start()
    try:
        yield server.base
    finally:
        server.stop()
