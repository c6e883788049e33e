"""Health for orchestrators: `GET /health` (alive) and `GET /ready` (can do its work), no token.

`complaints up` serves them on COMPLAINTS_HEALTH_PORT (on COMPLAINTS_WEB_HOST) when it is set,
which is how each `--only` component of deploy/k8s is probed; the ops server (aggregator) has
its own on the web port (reporting/web.py).

- `/health` is 200 while the process runs its components (a component that fails is
  restarted by the runtime, so it still runs); 503 once it is stopping, or when a
  component's thread has ended. A liveness probe restarts the pod on a 503: never because
  the broker or the database is down, which a restart does not mend.
- `/ready` is 200 when the database answers `SELECT 1`, the broker answers a metadata
  request, and every consumer-group member (workflow consumer, letter service) has received
  its partition assignment; else 503. The body says which check failed.

The checks run in a background thread every `every_s` seconds (default 2), each bounded by a
short timeout, so a probe's answer is immediate and never waits on the broker or database.
Bodies carry no personal data and no secret: states, counts and exception type names only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

PROBE_TIMEOUT_MS = 2000


class Readiness:
    """The latest result of each check, refreshed by `probe()` (called by the prober thread)."""

    def __init__(self, engine: Engine | None, kafka_config: Mapping[str, Any] | None,
                 partitions: Mapping[str, Callable[[], int | None]]) -> None:
        self.engine = engine
        self.kafka_config = dict(kafka_config) if kafka_config else None
        self.partitions = partitions  # component -> partitions assigned (None: not joined)
        self.checks: dict[str, Any] = {}
        self._admin: Any = None
        self._lock = threading.Lock()

    def probe(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        if self.engine is not None:
            checks["database"] = self._database()
        if self.kafka_config is not None:
            checks["broker"] = self._broker()
        for name, assigned in self.partitions.items():
            count = assigned()
            checks[f"{name}_partitions"] = ("not assigned" if count is None
                                            else f"ok: {count} assigned")
        with self._lock:
            self.checks = checks
        return checks

    @property
    def ready(self) -> bool:
        with self._lock:
            return bool(self.checks) and all(str(v).startswith("ok") for v in
                                             self.checks.values())

    def _database(self) -> str:
        assert self.engine is not None
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return "ok"
        except Exception as exc:  # noqa: BLE001 - the answer is "not ready", with the type
            return f"unreachable: {type(exc).__name__}"

    def _broker(self) -> str:
        from kafka import KafkaAdminClient  # deferred: importing kafka-python is not free

        assert self.kafka_config is not None
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    **self.kafka_config, client_id="complaints-health",
                    request_timeout_ms=PROBE_TIMEOUT_MS, bootstrap_timeout_ms=PROBE_TIMEOUT_MS)
            self._admin.describe_cluster()
            return "ok"
        except Exception as exc:  # noqa: BLE001 - the answer is "not ready", with the type
            self.close()  # a fresh client next time: bootstrap again
            return f"unreachable: {type(exc).__name__}"

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001, S110 - closing a client that already failed
                pass
            self._admin = None


class HealthServer:
    """The two endpoints on `host:port` (port 0: any free one, see `port`), in daemon threads."""

    def __init__(self, host: str, port: int, readiness: Readiness,
                 alive: Callable[[], tuple[bool, dict[str, Any]]], *,
                 every_s: float = 2.0) -> None:
        self.readiness = readiness
        self.alive = alive
        self.every_s = every_s
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    ok, body = server.alive()
                    body = {"status": "alive" if ok else "not alive", **body}
                elif path == "/ready":
                    ok = server.readiness.ready
                    body = {"status": "ready" if ok else "not ready",
                            "checks": dict(server.readiness.checks)}
                else:
                    ok, body = False, {"error": "not found"}
                data = json.dumps(body).encode()
                self.send_response(200 if ok else 404 if "error" in body else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # probes every few seconds: not worth a log line each

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._threads = [threading.Thread(target=self._httpd.serve_forever, name="health-http",
                                          daemon=True),
                         threading.Thread(target=self._probe_loop, name="health-probe",
                                          daemon=True)]

    def start(self) -> HealthServer:
        for thread in self._threads:
            thread.start()
        log.info("health server on port %d: GET /health, GET /ready", self.port)
        return self

    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.readiness.probe()
            except Exception as exc:  # noqa: BLE001 - a probe failure is "not ready"
                log.debug("readiness probe failed: %s", type(exc).__name__)
            self._stop.wait(max(0.1, self.every_s - (time.monotonic() - started)))
        self.readiness.close()

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
