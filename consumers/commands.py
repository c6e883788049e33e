"""`complaints up` and `complaints publish` (docs/contract.md "Commands").

Kept apart from consumers/cli.py, which adds them to the `complaints` group at its end; this
module imports nothing from cli.py, so either can be imported first.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from consumers.settings import Settings, Topics, environment_help
from workflow.bootstrap import App, bootstrap


def _open_app(db: str | None, config: str | None, migrate: bool) -> App:
    try:
        return bootstrap(db, config, run_migrations=migrate)
    except ValueError as exc:  # an unknown procedure name or a bad TOML file
        raise click.BadParameter(str(exc), param_hint="--config") from None


def _install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT: finish the batch in hand, commit, close. A second one exits at once."""
    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        click.echo(f"{signal.Signals(signum).name}: stopping (again to abort)", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


@click.command(epilog=environment_help())
@click.option("--db", "db", default=None, envvar="COMPLAINTS_DATABASE_URL",
              help="Database URL [env COMPLAINTS_DATABASE_URL; default sqlite:///complaints.db].")
@click.option("--config", "config", default=None, envvar="COMPLAINTS_CONFIG",
              help="Procedure: kilowatt-connect, lastmile or a TOML path [env COMPLAINTS_CONFIG].")
@click.option("--bootstrap-servers", default=None, envvar="KAFKA_BOOTSTRAP_SERVERS",
              help="Kafka brokers [env KAFKA_BOOTSTRAP_SERVERS; unset: embedded broker].")
@click.option("--topic-prefix", default=None, envvar="COMPLAINTS_TOPIC_PREFIX",
              help="Topic name prefix [env COMPLAINTS_TOPIC_PREFIX].")
@click.option("--only", "only", multiple=True,
              type=click.Choice(["consumer", "timer", "relay", "letters", "delivery",
                                 "aggregator", "retention"]),
              help="Run only this component (repeatable) [default: all seven; retention is "
                   "the daily erasure of complaints past retention_years].")
@click.option("--demo", is_flag=True, help="Also run a simulated contact centre.")
@click.option("--demo-rate", default=2.0, show_default=True, type=click.FloatRange(min=0.01),
              help="New demo complaints per second.")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="Stop by itself after this many seconds [default: run until signalled].")
@click.option("--init", "init", is_flag=True,
              help="Migrate the database and create missing topics, then exit (a deploy job).")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Migrate the database on start (off when a migration job does it).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: the exit summary as one JSON document on stdout.")
def up(db: str | None, config: str | None, bootstrap_servers: str | None,
       topic_prefix: str | None, only: tuple[str, ...], demo: bool, demo_rate: float,
       duration: float | None, init: bool, migrate: bool, fmt: str) -> None:
    """Run the service: workflow consumer, timer service, outbox relay, letter service (each
    issued letter as files in COMPLAINTS_LETTERS_DIR), delivery (each letter emailed through
    COMPLAINTS_SMTP_URL or put in the print queue, COMPLAINTS_PRINT_DIR; with --demo, email
    goes to a local SMTP sink writing demo-mail/), and the aggregator with the ops API
    and dashboard (http://127.0.0.1:8080/ unless COMPLAINTS_WEB_HOST/_PORT).

    With no KAFKA_BOOTSTRAP_SERVERS an embedded Kafka-compatible broker is started on
    loopback (memory only) and the topics are created. Logs go to stderr; the exit summary
    (counts and the backlog) to stdout. SIGTERM or Ctrl-C stops it cleanly.
    """
    from consumers import runtime  # deferred: `complaints --help` should not import Kafka

    settings = _settings(bootstrap_servers, topic_prefix)
    runtime.configure_logging(settings.log_level)
    _check_broker_security(settings)
    app = _open_app(db, config, migrate or init)
    if init:
        if not settings.bootstrap_servers:
            click.echo("--init needs KAFKA_BOOTSTRAP_SERVERS (the embedded broker keeps no "
                       "topics between runs)", err=True)
            sys.exit(2)
        try:
            created = runtime.create_topics(settings.client_config(), settings)
        finally:
            app.engine.dispose()
        click.echo(json.dumps({"migrated": True, "topics_created": created}))
        return
    stop = threading.Event()
    _install_stop_signals(stop)
    # COMPLAINTS_OPS_TOKEN, or one made for this run, which the aggregator prints once when
    # its server is bound (see reporting.web.ensure_ops_token).
    from reporting.web import ensure_ops_token

    token, generated = ensure_ops_token()
    options = runtime.RunOptions(only=only or runtime.COMPONENTS, demo=demo,
                                 demo_rate=demo_rate, duration=duration, ops_token=token,
                                 ops_token_generated=generated)
    service = runtime.Runtime(app, settings, options, stop)
    try:
        summary = service.run()
    finally:
        app.engine.dispose()
    # The stop's watchdog stays armed through the interpreter's exit, which waits for every
    # thread that is not a daemon (a library's, blocked on a dead broker, would hold it).
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(runtime.human_summary(summary))
    _exit_past_lingering_threads()


def _exit_past_lingering_threads() -> None:
    """Every component has stopped and its work is committed; a library thread that is not a
    daemon and still waits on a dead broker (faust's consumer thread, after its bounded stop
    gave up) would hold the interpreter's exit until the watchdog: exit now, with 0."""
    lingering = [t.name for t in threading.enumerate()
                 if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    if not lingering:
        return
    logging.getLogger(__name__).warning(
        "exiting past %d library thread(s) still waiting on the broker: %s", len(lingering),
        ", ".join(lingering))
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--bootstrap-servers", default=None, envvar="KAFKA_BOOTSTRAP_SERVERS",
              help="Kafka brokers [env KAFKA_BOOTSTRAP_SERVERS].")
@click.option("--topic-prefix", default=None, envvar="COMPLAINTS_TOPIC_PREFIX",
              help="Topic name prefix [env COMPLAINTS_TOPIC_PREFIX].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: {\"published\": n, \"unkeyed\": n} on stdout.")
def publish(file: Path, bootstrap_servers: str | None, topic_prefix: str | None,
            fmt: str) -> None:
    """Send a JSONL file's lines to complaints.events, keyed by complaint_id (else contact_id,
    else event_id). Lines that are not JSON objects are sent unkeyed, to be rejected."""
    from consumers.publish import publish_file

    settings = _settings(bootstrap_servers, topic_prefix)
    if not settings.bootstrap_servers:
        click.echo("error: no Kafka brokers: set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers",
                   err=True)
        sys.exit(2)
    try:
        report = publish_file(file, settings)
    except OSError as exc:
        click.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        sys.exit(2)
    document: dict[str, Any] = {**report.as_json(), "topic": settings.topics.events}
    if fmt == "json":
        click.echo(json.dumps(document))
    else:
        click.echo(f"published {report.published} message(s) to {settings.topics.events}"
                   + (f" ({report.unkeyed} without a key)" if report.unkeyed else ""))


def _check_broker_security(settings: Settings) -> None:
    """An untrusted broker certificate or refused SASL credentials: exit 1 now, with what to
    fix, instead of retrying for ever (consumers/preflight.py)."""
    from consumers.preflight import BrokerSecurityError, check_broker_security

    try:
        check_broker_security(settings)
    except BrokerSecurityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _settings(bootstrap_servers: str | None, topic_prefix: str | None) -> Settings:
    overrides: dict[str, Any] = {"bootstrap_servers": bootstrap_servers}
    if topic_prefix is not None:
        overrides["topics"] = Topics(topic_prefix)
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:  # a variable with a value the service cannot use
        raise click.UsageError(str(exc)) from None
