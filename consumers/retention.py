"""The daily retention run of `complaints up` (docs/contract.md `complaints retention --apply`).

Once at start and then every `interval_s` (a day), the complaints resolved or closed more
than `retention_years` ago and not under legal hold are erased as `complaints erase` erases
them (letter store and print queue included), recorded as erasures by "complaints up
(retention)". Its figures are served on `/metrics` (reporting/web.py). A failure is logged
(its type only: a message could quote data) and the run tried again at the next interval; the
component never stops the service.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from consumers.erasure import print_queue_dir, run_retention
from workflow.bootstrap import App

log = logging.getLogger(__name__)
DAY_S = 86_400.0
OPERATOR = "complaints up (retention)"


@dataclass
class RetentionStats:
    runs: int = 0
    erased: int = 0  # complaints erased by retention since start
    due: int = 0  # due at the last run (erased by it when it succeeded)
    failures: int = 0
    last_run_at: float | None = None  # wall clock, seconds since the epoch


class RetentionService:
    def __init__(self, app: App, *, letters_dir: str | Path, print_dir: str | Path | None = None,
                 interval_s: float = DAY_S) -> None:
        self.app = app
        self.letters_dir = Path(letters_dir)
        self.print_dir = print_queue_dir(print_dir)
        self.interval_s = interval_s
        self.stats = RetentionStats()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once(datetime.now(UTC))
            stop.wait(self.interval_s)

    def run_once(self, now: datetime) -> int:
        try:
            due, erased = run_retention(self.app, now, apply=True, by=OPERATOR,
                                        letters=self.letters_dir, print_queue=self.print_dir)
        except Exception as exc:  # noqa: BLE001 - tried again at the next interval
            self.stats.failures += 1
            log.error("retention run failed: %s", type(exc).__name__)
            return 0
        self.stats.runs += 1
        self.stats.due = len(due)
        self.stats.erased += erased
        self.stats.last_run_at = time.time()
        if erased:
            log.info("retention: erased %d complaint(s) past retention_years", erased)
        return erased
