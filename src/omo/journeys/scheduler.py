"""The in-process scheduler of the embedded default: a daemon thread that runs a scheduler
pass every few seconds while `omo serve` runs (production runs `omo jobs worker` instead)."""

from __future__ import annotations

import logging
import threading

from omo.db import UnitOfWork
from omo.journeys import service as journeys
from omo.messaging.adapters import Adapter
from omo.settings import Settings

log = logging.getLogger("omo.jobs")


class Scheduler:
    def __init__(self, uow: UnitOfWork, *, settings: Settings, adapters: dict[str, Adapter]):
        self.uow, self.settings, self.adapters = uow, settings, adapters
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        try:
            report = journeys.run_jobs(self.uow, settings=self.settings, adapters=self.adapters)
        except Exception:  # a bad pass must not stop the next one; it is logged whole
            log.exception("scheduler pass failed")
            return
        if report.advanced or any(report.entered.values()):
            log.info("jobs: %s", report.model_dump_json())

    def start(self, *, every_s: float) -> None:
        def loop() -> None:
            while not self._stop.wait(every_s):
                self.run_once()

        self._thread = threading.Thread(target=loop, name="omo-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
