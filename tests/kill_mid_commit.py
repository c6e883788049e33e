"""`python -m tests.kill_mid_commit up ...`: `complaints` that SIGKILLs itself mid-commit.

At its KILL_AT_COMMIT-th database commit (any component's), a timer sends the process SIGKILL
after a random 0 to KILL_WITHIN_S seconds (default 2 ms) while the COMMIT runs: the kill lands
inside the commit or just after it. For the SQLite crash test (test_faults_database.py).

The workflow consumer polls at most KILL_POLL_RECORDS (default 40) records a batch, so a run's
share of the stream takes many commits however the machine's load groups the records: with
the default 500, a loaded machine applied a run's 400 lines in three batches, and the run
never reached its KILL_AT_COMMIT-th commit.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

KILL_AT = int(os.environ["KILL_AT_COMMIT"])
WITHIN_S = float(os.environ.get("KILL_WITHIN_S", "0.002"))
_commits = 0
_lock = threading.Lock()


@event.listens_for(Engine, "commit")
def _before_commit(_connection: Any) -> None:  # fired as the COMMIT is about to run
    global _commits
    with _lock:
        _commits += 1
        if _commits != KILL_AT:
            return
    threading.Timer(random.uniform(0, WITHIN_S), os.kill,
                    (os.getpid(), signal.SIGKILL)).start()


if __name__ == "__main__":
    from consumers import workflow_consumer
    from consumers.cli import main

    _config = workflow_consumer.consumer_config
    _poll = int(os.environ.get("KILL_POLL_RECORDS", "40"))

    def _small_batches(settings: Any, **overrides: Any) -> dict[str, Any]:
        return _config(settings, **{"max_poll_records": _poll, **overrides})

    workflow_consumer.consumer_config = _small_batches

    sys.exit(main(sys.argv[1:], prog_name="complaints"))
