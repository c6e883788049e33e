"""The real ops web app served on a free loopback port from a thread of the test's own, as
`complaints up` serves it: the browser tests drive it in Debian's Chromium."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reporting.web import OpsState, bound_port, create_app, serve


@contextmanager
def ops_server(state: OpsState, token: str) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    """(the app's base URL, the loop serving it); stopped when the block ends."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    ports: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve(create_app(state, token), "127.0.0.1", 0))
        ports.append(bound_port(runner))
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{ports[0]}", loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
