"""The garbage collector, set for a worker that keeps many ORM objects alive.

A consumer holds tens of thousands of complaints and pending deadlines between batches, and
SQLAlchemy's objects are reference cycles, so CPython's default thresholds (a young collection
every 700 net allocations, a full one often) spent a fifth of ingest's time re-scanning the
same live objects: 1,697 against 2,154 events/s over 100,000 events, at the same peak memory
(266 and 269 MB; BENCHMARKS.md).
"""

from __future__ import annotations

import gc

# (young, middle, old): a young collection every 50,000 net allocations; then as CPython does.
GC_THRESHOLDS = (50_000, 10, 10)


def tune_garbage_collector() -> None:
    # What is loaded at start (modules, mappers, compiled statements) lives as long as the
    # process: out of every collection's way.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
