"""A real server on a free port and the machine's headless Chromium (Debian `chromium`, never a
browser download). Without chromium the tests skip with the reason, except under CI=true."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from omo.app import create_app
from omo.db import UnitOfWork, make_engine
from omo.settings import Settings

# signs the live server's sessions and card links (the tests make card links with it)
E2E_SECRET = "e2e-secret-" * 3
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[tuple[Any, str]]:
    """Playwright (one per session: its sync API cannot nest) and the browser's path."""
    path = _chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs the Debian chromium package (.ci/run installs it)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p, path


@pytest.fixture(scope="session")
def browser(chromium: tuple[Any, str]) -> Iterator[Any]:
    p, path = chromium
    b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    yield b
    b.close()


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.engine.dispose()


@pytest.fixture
def live(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[LiveServer, UnitOfWork]]:
    db = tmp_path / "omo.sqlite"
    shutil.copy(sqlite_template, db)
    settings = Settings(database_url=f"sqlite:///{db}", secret_key=E2E_SECRET)
    engine = make_engine(settings)
    with LiveServer(settings) as server:
        yield server, UnitOfWork(engine)
    engine.dispose()
