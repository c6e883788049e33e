"""The ops HTTP server: the live backlog, the running return items, health, metrics, dashboard.

An aiohttp application in the aggregator's own event loop (aiohttp ships with faust), so a
request reads the live view directly: no copy, no lock, no second process.

Endpoints (JSON unless said):

- `GET /health` (open, liveness): whether the view is ready, events applied, recovery
  figures; 200 while the server answers.
- `GET /ready` (open, readiness): the same document; 200 when the view is recovered and its
  partitions assigned, 503 while starting or recovering.
- `GET /backlog[?as_of=INSTANT]`: the `complaints backlog` document, from memory.
- `GET /returns/current[?month=YYYY-MM][&quarter=YYYY-Qn]`: the return items that can be counted
  from the output topics, for the current month and quarter (Europe/London) by default.
- `GET /metrics`: Prometheus text format.
- `GET /delivery` (v2): whether placeholder details pause delivery (which keys, the message)
  and the letters not yet delivered.
- (v2) `GET /submissions/due[?as_of=INSTANT]`: the Ofgem obligations calendar from the database
  (`complaints submissions due`): next due, overdue, resubmission needed, and every obligation.
- `GET /complaints/{id}/casefile[?format=pdf|zip]`: the complaint's case file for the Energy
  Ombudsman, from the database (rendered off the event loop); every such read of personal data
  is recorded (`personal_data_reads`: the token's fingerprint, when, which complaint).
- (work queue) `GET /trends[?days=N]` (reporting/trends.py) and `GET /complaints/behind?count=`
  (the lists behind the dashboard's other counts, reporting/countlists.py), from the database.
- The work queue's database reads (search, timeline, the lists, trends) run, on PostgreSQL, in
  reader processes of their own (reporting/readers.py, COMPLAINTS_OPS_READERS, default 4) that
  return the encoded JSON: the event loop only forwards bytes. On SQLite, or with
  COMPLAINTS_OPS_READERS=0, they run in the server's threads (COMPLAINTS_OPS_READ_THREADS).
- `GET /` (open): the dashboard page; it holds no data and fetches the endpoints above with the
  token (see reporting/static/dashboard.js for how the token is kept).

All but `/health`, `/ready`, `/` and its static files need
`Authorization: Bearer $COMPLAINTS_OPS_TOKEN`. The token is compared by digest in constant
time; a missing or wrong one gets 401.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reporting import readers as readers_module
from reporting.ops.records import micros, periods_of
from reporting.ops.view import NOT_STREAMED, Aggregator
from reporting.periods import BadPeriod, parse_month, parse_quarter
from reporting.readers import ReaderPool, ReadersStopped, pool_for
from reporting.submissions import ObligationsSource
from workflow.calendar import WorkingCalendar, end_of_date
from workflow.delivery import pause_message

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_FILES: Final = {
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
    "workqueue.js": "application/javascript",  # the work queue panel
    "workqueue.css": "text/css",
    "trends.js": "application/javascript",  # the work queue's trends panel
    "trends.css": "text/css",
}
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
DEFAULT_READ_THREADS: Final = 8
DEFAULT_READERS: Final = 4  # reader processes (reporting/readers.py)
RISK_PAGES_KEPT: Final = 2_000  # encoded at-risk pages kept per refit
TOKEN_VARIABLE: Final = "COMPLAINTS_OPS_TOKEN"
# The page runs only its own script and talks only to its own origin.
PAGE_POLICY: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                      "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                      "form-action 'self'; frame-ancestors 'none'")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)
CASEFILE_TYPES: Final = {"pdf": "application/pdf", "zip": "application/zip"}
# The app's reader processes: {"record": the record they read, "pool": its ReaderPool or None}.
READERS: Final = web.AppKey("readers", dict[str, Any])


# --------------------------------------------------------------------------- configuration
def web_address(environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """COMPLAINTS_WEB_HOST (default 127.0.0.1) and COMPLAINTS_WEB_PORT (default 8080)."""
    env = os.environ if environ is None else environ
    host = env.get("COMPLAINTS_WEB_HOST") or DEFAULT_HOST
    return host, _env_integer(env, "COMPLAINTS_WEB_PORT", DEFAULT_PORT, 0, 65535,
                              "a port number", "")


def _env_integer(env: Mapping[str, str], name: str, default: int, low: int, high: int,
                 kind: str, bounds: str) -> int:
    """The integer setting `name` (`default` when unset or empty), refused with a message
    naming it when it is not `kind` or falls outside low..high."""
    text = env.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be {kind}, not {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is out of range{bounds}")
    return value


def ensure_ops_token(environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """The ops token from COMPLAINTS_OPS_TOKEN, or a new random one: (token, generated).

    When `generated`, the caller prints it once (see `token_notice`): it exists nowhere else.
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_VARIABLE, "").strip()
    if token:
        return token, False
    return secrets.token_urlsafe(32), True


def dashboard_url(host: str, port: int, token: str | None = None) -> str:
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "") else host
    url = f"http://{shown}:{port}/"
    # The token travels in the fragment: browsers never send it to a server or in a Referer.
    return f"{url}#token={token}" if token else url


def token_notice(host: str, port: int, token: str) -> str:
    return (f"ops dashboard: {dashboard_url(host, port, token)}\n"
            f"ops API token (generated for this run; set {TOKEN_VARIABLE} to choose one): "
            f"{token}")


# --------------------------------------------------------------------------- state
@dataclass
class OpsState:
    """What the web server reads: the current aggregator (replaced when it restarts), status."""

    calendar: WorkingCalendar
    aggregator: Aggregator
    status: str = "starting"  # starting | recovering | running | restarting | stopped
    partitions_assigned: int = 0
    partitions_total: int = 0
    restarts: int = 0
    started_at: float = field(default_factory=time.time)
    error: str | None = None  # the last failure, type and first line only
    web_port: int | None = None  # the port bound (port 0 asks for a free one)
    # (v2) The procedure's placeholder tables that hold delivery back (none in the demo).
    delivery_paused: tuple[str, ...] = ()
    # (v2) The submissions calendar, from the database; None where the server has none.
    obligations: ObligationsSource | None = None
    # The record (a workflow.bootstrap.App), for the endpoints that read the database: the
    # case file and the work queue's reads (search, timeline). None where the server runs
    # without one (python -m consumers.aggregator).
    record: Any = None
    retention: Any = None  # consumers.retention.RetentionStats, when `complaints up` runs it
    risk: Any = None  # the latest reporting.risk.RiskBoard (refitted by `complaints up`)

    @property
    def ready(self) -> bool:
        return self.aggregator.ready and self.status == "running"

    def health(self) -> dict[str, Any]:
        stats = self.aggregator.stats
        last = stats.last_applied_at
        return {
            "status": "ok" if self.ready else self.status,
            "ready": self.ready,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "complaints": self.aggregator.complaints,
            "events": {"applied": stats.applied, "duplicates": stats.duplicates,
                       "malformed": stats.malformed},
            "recovered_complaints": stats.recovered,
            "seconds_since_last_event": None if last is None else round(time.time() - last, 1),
            "partitions": {"assigned": self.partitions_assigned, "total": self.partitions_total},
            "restarts": self.restarts,
            "error": self.error,
        }


# --------------------------------------------------------------------------- metrics
class ViewCollector(Collector):
    """Figures read from the live view at scrape time (nothing is copied between scrapes)."""

    def __init__(self, state: OpsState) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        state = self.state
        stats = state.aggregator.stats
        ready = GaugeMetricFamily("complaints_aggregator_ready",
                                  "1 when the live view is recovered and consuming")
        ready.add_metric([], 1.0 if state.ready else 0.0)
        yield ready
        events = CounterMetricFamily("complaints_aggregator_events",
                                     "Output events read, by outcome", labels=["outcome"])
        for outcome, value in (("applied", stats.applied), ("duplicate", stats.duplicates),
                               ("malformed", stats.malformed)):
            events.add_metric([outcome], value)
        yield events
        tracked = GaugeMetricFamily("complaints_aggregator_complaints",
                                    "Complaints held in the aggregator's table")
        tracked.add_metric([], state.aggregator.complaints)
        yield tracked
        if stats.last_applied_at is not None:
            last = GaugeMetricFamily("complaints_aggregator_last_event_timestamp_seconds",
                                     "Wall-clock time the last event was applied")
            last.add_metric([], stats.last_applied_at)
            yield last
        yield from delivery_metrics(state)
        yield from obligation_gauges(state)  # from the database: whether or not the view is ready
        yield from _retention_metrics(state.retention)
        if not state.ready:
            return
        now = datetime.now(UTC)
        backlog = state.aggregator.view.backlog(now, state.calendar)
        undelivered = GaugeMetricFamily("complaints_letters_undelivered",
                                        "Letters issued and not yet delivered (email or post)")
        undelivered.add_metric([], backlog["undelivered_letters"])
        yield undelivered
        by_state = GaugeMetricFamily("complaints_backlog", "Complaints by state",
                                     labels=["state"])
        for name, value in backlog["by_state"].items():
            by_state.add_metric([name], value)
        yield by_state
        overdue = GaugeMetricFamily("complaints_deadlines_overdue",
                                    "Deadlines overdue (remedies: overdue and not implemented)",
                                    labels=["kind"])
        soon = GaugeMetricFamily("complaints_deadlines_due_within_5_working_days",
                                 "Unfired deadlines due within 5 working days", labels=["kind"])
        for name, value in backlog["overdue"].items():
            overdue.add_metric([name], value)
        for name, value in backlog["due_within_5_working_days"].items():
            soon.add_metric([name], value)
        yield overdue
        yield soon
        late = GaugeMetricFamily("complaints_late_referrals",
                                 "Complaints with the Ombudsman referred after their referral "
                                 "window ended")
        late.add_metric([], backlog["late_referrals"])
        yield late
        month, _ = periods_of_now(now)
        monthly = state.aggregator.view.monthly(month)
        receipts = GaugeMetricFamily("complaints_receipts_this_month",
                                     "Receipts in the current month by channel",
                                     labels=["channel"])
        for name, value in monthly["receipts_by_channel"].items():
            receipts.add_metric([name], value)
        yield receipts


def delivery_metrics(state: OpsState) -> Iterable[Metric]:
    """(v2) Whether placeholder details hold delivery back, and which (docs/rules.md s.6)."""
    paused = GaugeMetricFamily("complaints_delivery_paused",
                               "1 while placeholder details in the procedure stop delivery")
    paused.add_metric([], 1.0 if state.delivery_paused else 0.0)
    yield paused
    keys = GaugeMetricFamily("complaints_delivery_placeholder",
                             "Procedure tables marked placeholder = true that stop delivery",
                             labels=["key"])
    for key in state.delivery_paused:
        keys.add_metric([key], 1.0)
    yield keys


def delivery_document(state: OpsState) -> dict[str, Any]:
    """`GET /delivery`: the placeholder pause and the letters waiting."""
    paused = state.delivery_paused
    undelivered = (state.aggregator.view.backlog(datetime.now(UTC), state.calendar)
                   ["undelivered_letters"] if state.ready else None)
    return {"paused": bool(paused), "placeholders": list(paused),
            "message": pause_message(paused) if paused else None,
            "undelivered_letters": undelivered}


def obligation_gauges(state: OpsState) -> Iterable[Metric]:
    """(v2) The submissions calendar as gauges, from the last answer computed (the metrics
    handler refreshes it in a worker thread first; a scrape never blocks the loop on SQL)."""
    summary = state.obligations.latest if state.obligations is not None else None
    if summary is None:
        return
    by_status = GaugeMetricFamily("complaints_submissions_obligations",
                                  "Ofgem returns and publications by status",
                                  labels=["status"])
    for name, value in summary["counts"].items():
        by_status.add_metric([name], value)
    yield by_status
    overdue = GaugeMetricFamily("complaints_submissions_overdue",
                                "Returns and publications past their due date, not submitted")
    overdue.add_metric([], len(summary["overdue"]))
    yield overdue
    moved = GaugeMetricFamily("complaints_submissions_resubmission_needed",
                              "Submitted returns that a computation now no longer matches")
    moved.add_metric([], len(summary["resubmission_needed"]))
    yield moved
    upcoming = summary["next_due"]
    if upcoming is not None:
        due = GaugeMetricFamily("complaints_submission_next_due_timestamp_seconds",
                                "End of the due date of the next return or publication due",
                                labels=["kind", "period"])
        day = datetime.fromisoformat(upcoming["due"]).date()
        due.add_metric([upcoming["kind"], upcoming["period"]], end_of_date(day).timestamp())
        yield due


def _retention_metrics(stats: Any) -> Iterable[Metric]:
    """The daily retention run of `complaints up` (consumers/retention.py), when it runs."""
    if stats is None:
        return
    for name, help_text, value in (
            ("complaints_retention_runs", "Retention runs completed", stats.runs),
            ("complaints_retention_erased", "Complaints erased by retention", stats.erased),
            ("complaints_retention_failures", "Retention runs that failed", stats.failures)):
        counter = CounterMetricFamily(name, help_text)
        counter.add_metric([], value)
        yield counter
    due = GaugeMetricFamily("complaints_retention_due",
                            "Complaints past retention_years at the last run")
    due.add_metric([], stats.due)
    yield due
    if stats.last_run_at is not None:
        last = GaugeMetricFamily("complaints_retention_last_run_timestamp_seconds",
                                 "Wall-clock time of the last retention run")
        last.add_metric([], stats.last_run_at)
        yield last


def periods_of_now(now: datetime) -> tuple[str, str]:
    return periods_of(micros(now))


# --------------------------------------------------------------------------- the application
def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


COMMON_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                         "Referrer-Policy": "no-referrer"}


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status,
                             headers={**COMMON_HEADERS, **headers})


# What `GET /complaints/behind` takes; anything else is a 400 (a misspelt filter would
# otherwise widen the list without a word).
BEHIND_PARAMETERS: Final = frozenset({"count", "kind", "day", "month", "channel", "category",
                                      "state", "as_of", "offset", "limit"})


def _page_bounds(query: Mapping[str, str], limit: int, most: int) -> tuple[int, int]:
    """`offset` (>= 0, default 0) and `limit` (1..most, default `limit`) of a paginated
    endpoint; ValueError with the rule (not Python's words) when either is not such an
    integer."""
    rule = f"offset must be >= 0 and limit 1..{most}"
    try:
        offset, size = int(query.get("offset", "0")), int(query.get("limit", str(limit)))
    except ValueError:
        raise ValueError(rule) from None
    if offset < 0 or not 1 <= size <= most:
        raise ValueError(rule)
    return offset, size


def _instant_param(request: web.Request, name: str) -> datetime:
    """The instant in the query (now by default); ValueError says what is wrong with it."""
    text = request.query.get(name)
    if text is None:
        return datetime.now(UTC)
    try:
        # An unescaped '+' in a query string arrives as a space.
        value = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise ValueError(f"{name} is not an ISO-8601 instant") from None
    if value.utcoffset() is None:
        raise ValueError(f"{name} has no UTC offset")
    return value


def create_app(state: OpsState, token: str) -> web.Application:
    """The ops web application over `state`, requiring `token` on the data endpoints."""
    if not token:
        raise ValueError("the ops API needs a token")
    expected = _digest(token)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ViewCollector(state))
    page = (STATIC_DIR / "dashboard.html").read_bytes()
    assets = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_FILES}

    def guarded(handler: Handler) -> Handler:
        """The bearer check, wrapped around each data endpoint (a middleware would cost every
        request, open ones included, a further call through the chain)."""
        async def check(request: web.Request) -> web.StreamResponse:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            # Digests make the comparison constant-time in the token's length too.
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    _digest(presented.strip()), expected):
                return _error(401, "missing or invalid bearer token",
                              **{"WWW-Authenticate": 'Bearer realm="complaints-ops"'})
            return await handler(request)

        return check

    def not_ready() -> web.Response:
        return _error(503, f"the live view is not ready ({state.status})", **{"Retry-After": "2"})

    async def dashboard(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers={
            **COMMON_HEADERS, "Content-Security-Policy": PAGE_POLICY,
            "Cache-Control": "no-cache", "X-Frame-Options": "DENY"})

    async def favicon(request: web.Request) -> web.Response:
        raise web.HTTPFound("/static/favicon.svg")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            raise web.HTTPNotFound()
        return web.Response(body=assets[name], content_type=STATIC_FILES[name],
                            headers={**COMMON_HEADERS, "Cache-Control": "no-cache"})

    async def health(request: web.Request) -> web.Response:
        # Alive (liveness): 200 while the server answers, recovering or not; `ready` says which.
        return web.json_response(state.health(), headers=COMMON_HEADERS)

    async def ready(request: web.Request) -> web.Response:
        # Readiness: the view is recovered and its partitions assigned; 503 until then.
        return web.json_response(state.health(), status=200 if state.ready else 503,
                                 headers=COMMON_HEADERS)

    async def backlog(request: web.Request) -> web.Response:
        try:
            as_of = _instant_param(request, "as_of")
        except ValueError as exc:
            return _error(400, str(exc))
        if not state.ready:
            return not_ready()
        body = state.aggregator.view.backlog_json(as_of, state.calendar)
        return web.Response(body=body, content_type="application/json",
                            headers=COMMON_HEADERS)

    async def returns(request: web.Request) -> web.Response:
        try:
            as_of = _instant_param(request, "as_of")
            month, quarter = periods_of_now(as_of)
            month = parse_month(request.query.get("month", month)).label
            quarter = parse_quarter(request.query.get("quarter", quarter)).label
        except (BadPeriod, ValueError) as exc:
            return _error(400, str(exc))
        if not state.ready:
            return not_ready()
        view = state.aggregator.view
        document = {
            "as_of": as_of.isoformat(),
            "month": view.monthly(month),
            "quarter": view.quarterly(quarter),
            "periods": view.periods(),
            "not_streamed": NOT_STREAMED,
        }
        return web.json_response(document, headers=COMMON_HEADERS)

    async def delivery(request: web.Request) -> web.Response:
        return web.json_response(delivery_document(state), headers=COMMON_HEADERS)

    async def submissions_due(request: web.Request) -> web.Response:
        try:
            as_of = (_instant_param(request, "as_of") if "as_of" in request.query else None)
        except ValueError as exc:
            return _error(400, str(exc))
        source = state.obligations
        if source is None:
            return _error(503, "no database here: the submissions calendar is not available")
        summary = await asyncio.get_running_loop().run_in_executor(None, source.summary, as_of)
        return web.json_response(summary, headers=COMMON_HEADERS)

    async def casefile(request: web.Request) -> web.Response:
        """One complaint's case file (PDF, or ZIP with its letters): personal data, so each
        read is recorded (who, when, which complaint) before it is sent."""
        from reporting.casefile import casefile_bytes, record_read, token_identity

        if state.record is None:
            return _error(503, "the case file needs the database (run under complaints up)")
        fmt = request.query.get("format", "pdf")
        if fmt not in ("pdf", "zip"):
            return _error(400, "format must be pdf or zip")
        complaint_id = request.match_info["complaint_id"]
        reader = token_identity(request.headers["Authorization"].partition(" ")[2].strip())

        now = datetime.now(UTC)
        loop = asyncio.get_running_loop()
        # Rendering takes a second or more of Python: in a process of its own, so that it
        # holds neither the event loop (the live view) nor the interpreter lock its threads
        # share (a memory database, which only this process sees, renders in a thread).
        pool = casefiles.pool_for(state.record)
        if pool is not None:
            try:
                data = await loop.run_in_executor(pool, render_casefile, complaint_id, fmt,
                                                  now)
            except BrokenProcessPool:  # the renderer died (memory?): a new one next time
                casefiles.close()
                return _error(503, "the case-file renderer stopped; try again",
                              **{"Retry-After": "2"})
        else:
            data = await loop.run_in_executor(None, lambda: casefile_bytes(
                state.record, complaint_id, fmt, now))  # type: ignore[arg-type]
        if data is None:
            return _error(404, "unknown complaint")
        await loop.run_in_executor(None, lambda: record_read(
            state.record, reader=reader, complaint_id=complaint_id, what=f"casefile.{fmt}",
            at=now))
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in complaint_id)
        return web.Response(body=data, content_type=CASEFILE_TYPES[fmt], headers={
            **COMMON_HEADERS,
            "Content-Disposition": f'attachment; filename="casefile-{safe}.{fmt}"'})

    async def metrics(request: web.Request) -> web.Response:
        if state.obligations is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, state.obligations.summary)
            except Exception as exc:  # noqa: BLE001 - the other gauges are still served
                log.warning("submissions calendar unavailable: %s", type(exc).__name__)
        body = generate_latest(registry)
        return web.Response(body=body, headers={**COMMON_HEADERS,
                                                "Content-Type": CONTENT_TYPE_LATEST})

    risk_pages: dict[Any, Any] = {}

    async def risk(request: web.Request) -> web.Response:
        """The at-risk list of the latest refit, highest p_breach first, paginated."""
        try:
            offset, limit = _page_bounds(request.query, 100, 1000)
        except ValueError as exc:
            return _error(400, str(exc))
        board = state.risk
        if board is not None:
            # A board is replaced whole at each refit, never changed: its pages are encoded
            # once (the dashboard and its many tabs ask for the same few).
            if risk_pages.get("board") is not board:
                risk_pages.clear()
                risk_pages["board"] = board
            key = (offset, limit)
            body = risk_pages.get(key)
            if body is None:
                body = json.dumps(board.page(offset, limit)).encode()
                if len(risk_pages) <= RISK_PAGES_KEPT:
                    risk_pages[key] = body
            return web.Response(body=body, content_type="application/json", charset="utf-8",
                                headers=COMMON_HEADERS)
        # Not computed yet: an empty page saying so (the dashboard polls this quietly).
        return web.json_response(
            {"as_of": None, "computed_at": None, "model": None, "total": 0,
             "offset": offset, "limit": limit, "complaints": []}, headers=COMMON_HEADERS)

    reads = RecordReads(read_threads(os.environ))
    casefiles = CaseFileRenderer()
    readers_wanted = reader_processes(os.environ)
    readers: dict[str, Any] = {}  # "pool": the ReaderPool of readers["record"]

    async def from_record(read: Callable[[Any], Any]) -> Any:
        """A read of the database, off the event loop, in the ops API's own threads."""
        return await reads.run(state.record, read)

    def reader_pool() -> ReaderPool | None:
        """The reader processes over the current record (PostgreSQL; None: read in threads)."""
        record = state.record
        if readers.get("record") is not record:
            old = readers.pop("pool", None)
            if old is not None:  # another record: its readers stop, joined off the loop
                old.close(wait=False)
                asyncio.get_running_loop().run_in_executor(None, old.join)
            readers["record"] = record
            readers["pool"] = pool_for(record, readers_wanted)
        pool: ReaderPool | None = readers.get("pool")
        return pool

    async def read_json(pool: ReaderPool, function: Callable[..., bytes | None],
                        *arguments: Any) -> web.Response:
        """`function(*arguments)` in a reader process, its JSON bytes as the response (404
        when it found nothing: an unknown complaint); 503 when the readers stopped twice for
        it."""
        try:
            body: bytes | None = await pool.run(function, *arguments)
        except ReadersStopped:
            return _error(503, "the ops reader processes stopped; try again",
                          **{"Retry-After": "2"})
        return _error(404, "unknown complaint") if body is None else json_body(body)

    def json_body(body: bytes) -> web.Response:
        """Encoded JSON as web.json_response sends it (type, charset, headers)."""
        return web.Response(body=body, content_type="application/json", charset="utf-8",
                            headers=COMMON_HEADERS)

    async def search(request: web.Request) -> web.Response:
        from reporting.workqueue import search as find

        text = request.query.get("q", "")
        if not text.strip() or len(text) > 200:
            return _error(400, "q: a reference or complaint id (1-200 characters)")
        if state.record is None:
            return _error(503, "no record to search")
        pool = reader_pool()
        if pool is not None:
            return await read_json(pool, readers_module.read_search, text)
        found = await from_record(lambda session: find(session, text))
        return web.json_response({"query": text, "complaints": found}, headers=COMMON_HEADERS)

    async def timeline(request: web.Request) -> web.Response:
        from reporting.workqueue import timeline as read_timeline

        if state.record is None:
            return _error(503, "no record to read")
        complaint_id = request.match_info["complaint_id"]
        from reporting.casefile import token_identity

        reader = token_identity(request.headers["Authorization"].partition(" ")[2].strip())
        pool = reader_pool()
        if pool is not None:
            # The same read and record of it (readers.read_timeline), in a reader process.
            return await read_json(pool, readers_module.read_timeline, complaint_id, reader)

        def read_and_record(session: Any) -> Any:
            # One complaint's record: a read of personal data, recorded (committed) before
            # it is sent; on the same connection as the read (in its trip on PostgreSQL),
            # off the loop. An unknown complaint records nothing.
            document = read_timeline(session, complaint_id,
                                     readers_module.read_record(reader))
            session.commit()
            return document

        document = await from_record(read_and_record)
        if document is None:
            return _error(404, "unknown complaint")
        return web.json_response(document, headers=COMMON_HEADERS)

    async def complaint_list(request: web.Request) -> web.Response:
        """The complaints behind a count: ?state=S, ?overdue=KIND[&as_of=I] or
        ?received=YYYY-MM-DD, with &offset (up to 10,000) or &after (the page's `next`),
        and &limit (1-500)."""
        from datetime import date as calendar_date

        from reporting.workqueue import OFFSET_LIMIT, listing
        from workflow.handlers import DEADLINE_KINDS
        from workflow.lifecycle import STATES

        query = request.query
        try:
            offset, limit = _page_bounds(query, 50, 500)
            chosen = [name for name in ("state", "overdue", "received") if name in query]
            if len(chosen) != 1:
                raise ValueError("give exactly one of state, overdue, received")
            state_ = query.get("state")
            if state_ is not None and state_ not in STATES:
                raise ValueError(f"state must be one of {', '.join(STATES)}")
            kind = query.get("overdue")
            if kind is not None and kind not in DEADLINE_KINDS:
                raise ValueError(f"overdue must be one of {', '.join(DEADLINE_KINDS)}")
            day = query.get("received")
            received = calendar_date.fromisoformat(day) if day is not None else None
            as_of = _instant_param(request, "as_of")
            after = query.get("after")
            if offset > OFFSET_LIMIT:
                raise ValueError(f"offset must be at most {OFFSET_LIMIT}: page on with after")
        except ValueError as exc:
            return _error(400, str(exc))
        if state.record is None:
            return _error(503, "no record to read")
        pool = reader_pool()
        try:
            if pool is not None:
                return await read_json(pool, readers_module.read_listing, {
                    "state": state_, "overdue": kind, "received": received, "as_of": as_of,
                    "offset": offset, "limit": limit, "after": after})
            document = await from_record(lambda session: listing(
                session, state=state_, overdue=kind, received=received, as_of=as_of,
                offset=offset, limit=limit, after=after))
        except ValueError as exc:  # a malformed `after`
            return _error(400, str(exc))
        return web.json_response(document, headers=COMMON_HEADERS)

    async def complaints_behind(request: web.Request) -> web.Response:
        """(work queue) The complaints behind the dashboard's other counts:
        ?count=unresolved|overdue|late_referrals|undelivered, due_soon&kind=K,
        letters&day=YYYY-MM-DD, received_month&month=YYYY-MM[&channel=C|&category=B],
        stage_on&state=S&day=YYYY-MM-DD; [&as_of=I],
        &offset, &limit (1-500). See reporting/countlists.py."""
        from datetime import date as calendar_date

        from reporting.countlists import COUNTS, behind
        from workflow.handlers import DEADLINE_KINDS
        from workflow.lifecycle import STATES

        query = request.query
        try:
            stray = sorted(set(query) - BEHIND_PARAMETERS)
            if stray:
                raise ValueError(f"unknown parameter {stray[0]}: this list takes "
                                 f"{', '.join(sorted(BEHIND_PARAMETERS))}")
            offset, limit = _page_bounds(query, 50, 500)
            count = query.get("count", "")
            if count not in COUNTS:
                raise ValueError(f"count must be one of {', '.join(COUNTS)}")
            kind = query.get("kind")
            if (count == "due_soon") != (kind is not None) or (
                    kind is not None and kind not in DEADLINE_KINDS):
                raise ValueError(f"due_soon needs kind, one of {', '.join(DEADLINE_KINDS)}")
            day_text = query.get("day")
            if (count in ("letters", "stage_on")) != (day_text is not None):
                raise ValueError("letters and stage_on need day=YYYY-MM-DD (and only they "
                                 "take it)")
            day = calendar_date.fromisoformat(day_text) if day_text is not None else None
            month_text = query.get("month")
            if (count == "received_month") != (month_text is not None):
                raise ValueError("received_month needs month=YYYY-MM (and only it takes it)")
            month = parse_month(month_text) if month_text is not None else None
            channel = query.get("channel")
            if channel is not None and (count != "received_month" or len(channel) > 32):
                raise ValueError("channel goes with received_month")
            category = query.get("category")
            if category is not None and (count != "received_month" or len(category) > 4):
                raise ValueError("category goes with received_month")
            stage = query.get("state")
            if (count == "stage_on") != (stage is not None) or (
                    stage is not None and stage not in STATES):
                raise ValueError(f"stage_on needs state, one of {', '.join(STATES)}")
            as_of = _instant_param(request, "as_of")
        except (BadPeriod, ValueError) as exc:
            return _error(400, str(exc))
        if state.record is None:
            return _error(503, "no record to read")
        pool = reader_pool()
        if pool is not None:
            return await read_json(pool, readers_module.read_behind, count, {
                "as_of": as_of, "calendar": state.calendar, "kind": kind, "day": day,
                "month": month, "channel": channel, "category": category, "state": stage,
                "offset": offset, "limit": limit})
        document = await from_record(lambda session: behind(
            session, count, as_of=as_of, calendar=state.calendar, kind=kind, day=day,
            month=month, channel=channel, category=category, state=stage, offset=offset,
            limit=limit))
        return web.json_response(document, headers=COMMON_HEADERS)

    async def trends(request: web.Request) -> web.Response:
        """(work queue) Receipts, letters and the backlog per stage per day: ?days=1..366
        (default 30) local dates ending with as_of's (now by default)."""
        from reporting.trends import DEFAULT_DAYS, MAX_DAYS
        from reporting.trends import trends as read_trends

        try:
            days = int(request.query.get("days", str(DEFAULT_DAYS)))
            if not 1 <= days <= MAX_DAYS:
                raise ValueError(f"days must be 1..{MAX_DAYS}")
            as_of = _instant_param(request, "as_of")
        except ValueError as exc:
            return _error(400, str(exc) if "days" in str(exc) or "as_of" in str(exc)
                          else f"days must be 1..{MAX_DAYS}")
        if state.record is None:
            # No database here: an empty answer saying so, not an error (the dashboard asks
            # on every page and simply shows no trends panel, as /risk does before a fit).
            return web.json_response(
                {"as_of": as_of.isoformat(), "days": [], "receipts": [], "letters": [],
                 "letters_by_kind": {}, "backlog": {},
                 "note": "no record here: the trends need the database"},
                headers=COMMON_HEADERS)
        pool = reader_pool()
        if pool is not None:
            return await read_json(pool, readers_module.read_trends, as_of, days)
        document = await from_record(lambda session: read_trends(session, as_of, days))
        return web.json_response(document, headers=COMMON_HEADERS)

    app = web.Application()

    async def close_reads(_app: web.Application) -> None:
        reads.close()
        casefiles.close()
        pool = readers.pop("pool", None)
        readers["record"] = None
        if pool is not None:
            pool.close(wait=False)  # in the loop: its pipes are the loop's
            # Then wait for the processes to exit, off the loop.
            await asyncio.get_running_loop().run_in_executor(None, pool.join)

    app.on_cleanup.append(close_reads)
    app[READERS] = readers
    # Open: the page (it holds no figures), its files, and health.
    app.router.add_get("/", dashboard)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    # Everything with figures needs the token.
    app.router.add_get("/backlog", guarded(backlog))
    app.router.add_get("/returns/current", guarded(returns))
    app.router.add_get("/metrics", guarded(metrics))
    app.router.add_get("/delivery", guarded(delivery))
    app.router.add_get("/submissions/due", guarded(submissions_due))
    app.router.add_get("/complaints/{complaint_id}/casefile", guarded(casefile))
    app.router.add_get("/risk", guarded(risk))
    app.router.add_get("/complaints", guarded(complaint_list))
    app.router.add_get("/complaints/search", guarded(search))
    app.router.add_get("/complaints/{complaint_id}/timeline", guarded(timeline))
    app.router.add_get("/trends", guarded(trends))
    app.router.add_get("/complaints/behind", guarded(complaints_behind))
    return app


def read_threads(environ: Mapping[str, str]) -> int:
    """COMPLAINTS_OPS_READ_THREADS (default 8): the ops API's threads reading the record."""
    return _env_integer(environ, "COMPLAINTS_OPS_READ_THREADS", DEFAULT_READ_THREADS, 1, 64,
                        "a number", " (1-64)")


def reader_processes(environ: Mapping[str, str]) -> int:
    """COMPLAINTS_OPS_READERS (default 4, 0-32): the ops API's reader processes for the work
    queue's PostgreSQL reads; 0 reads in the server's own threads (COMPLAINTS_OPS_READ_THREADS)."""
    return _env_integer(environ, "COMPLAINTS_OPS_READERS", DEFAULT_READERS, 0, 32, "a number",
                        " (0-32)")


class RecordReads:
    """The work queue's reads of the record (search, timeline, lists), in a thread pool of
    their own with, on PostgreSQL, a connection pool of the same size. (On PostgreSQL they
    go to the reader processes instead, reporting/readers.py, unless COMPLAINTS_OPS_READERS
    is 0.)

    Not the default executor: a case file's PDF (seconds of rendering there) never holds up
    a search. Not the record's engine: its pool (SQLAlchemy's 5 + 10 overflow) closes every
    connection beyond the fifth when it is returned, so 20 clients would open and close a
    connection for most requests; here each thread keeps one. SQLite reads go through the
    record's own engine (a file, or a memory database only that engine sees).
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ops-read")
        self._sessions: dict[int, tuple[Any, Any]] = {}  # id(record) -> (record, factory)
        self._lock = threading.Lock()

    def _factory(self, record: Any) -> Any:
        with self._lock:
            known = self._sessions.get(id(record))
            if known is not None and known[0] is record:
                return known[1]
            engine = record.engine
            if engine.dialect.name == "postgresql":
                from workflow.database import make_engine, session_factory

                # Autocommit: a read is its statements and nothing else (no BEGIN and
                # ROLLBACK around them, two of a list's three trips to the server). Under
                # READ COMMITTED each statement had its own snapshot anyway; the timeline's
                # record of the read is committed by its INSERT.
                reader = make_engine(engine.url.render_as_string(hide_password=False),
                                     pool_size=self.threads, max_overflow=0,
                                     pool_pre_ping=False, isolation_level="AUTOCOMMIT")
                factory: Any = session_factory(reader)
            else:
                factory = record.sessions
            self._sessions[id(record)] = (record, factory)
            return factory

    async def run(self, record: Any, read: Callable[[Any], Any]) -> Any:
        def work() -> Any:
            with self._factory(record)() as session:
                return read(session)

        return await asyncio.get_running_loop().run_in_executor(self.executor, work)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for record, factory in self._sessions.values():
                if factory is not record.sessions:
                    factory.kw["bind"].dispose()
            self._sessions.clear()


# The record of the case-file process (see CaseFileRenderer), opened once per process.
_worker_record: Any = None


def _open_worker_record(url: str, procedure: Any) -> None:
    global _worker_record  # noqa: PLW0603 - one record per worker process, for its lifetime
    from workflow.bootstrap import bootstrap

    _worker_record = bootstrap(url, procedure, run_migrations=False)


def render_casefile(complaint_id: str, fmt: str, now: datetime) -> bytes | None:
    """In the case-file process: the complaint's case file from its own record."""
    from reporting.casefile import casefile_bytes

    return casefile_bytes(_worker_record, complaint_id, fmt, now)  # type: ignore[arg-type]


class CaseFileRenderer:
    """A process that renders case files from the record (started at the first one asked
    for; spawned, not forked, from a server with threads and an event loop running)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._record: Any = None

    def pool_for(self, record: Any) -> ProcessPoolExecutor | None:
        url = record.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        if self._pool is None or self._record is not record:
            self.close()
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_open_worker_record,
                initargs=(url.render_as_string(hide_password=False), record.procedure))
            self._record = record
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; returns the runner (`await runner.cleanup()` to stop)."""
    # No access log: request lines are noise here, and the log stays free of query strings.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (for port 0 in tests)."""
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the web server is not listening")
