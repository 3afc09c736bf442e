"""A real single-node Apache Kafka broker (KRaft) for the test suite.

The broker runs from the Maven Central jars that ``infra/kafka/pom.xml`` resolves; they are
copied once into ``.cache/kafka/<version>/libs`` and reused by every later session.

Each broker has three listeners on 127.0.0.1, on free ports picked once and kept across
``stop()``/``start()``:

* ``PLAINTEXT`` for clients and inter-broker traffic,
* ``SASL_SSL`` with SCRAM-SHA-512 for clients (the platform's brokers, docs/operations.md), with a
fresh
  CA and broker certificate made by the ``openssl`` CLI,
* ``CONTROLLER`` (plain text: KRaft controllers do not speak SCRAM).

Usage from a script (pytest users take the ``kafka_broker`` fixture of ``kafka_fixtures``)::

    broker = start_broker(workdir, default_cache_dir())
    ...
    broker.stop()    # outage: the JVM is gone, the data directory and the ports stay
    broker.start()   # same broker back, returns once it answers on both listeners

``start()``/``stop()`` block; from a coroutine call them through ``asyncio.to_thread``.

Command line (used by ``make kafka-deps``)::

    python -m tests.support.kafka_broker deps   # download the classpath into the cache
    python -m tests.support.kafka_broker run    # run a broker in the foreground for manual use
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from tests.support.certs import issue_server_cert
from tests.support.processes import (
    free_ports,
    signal_group,
    spawn_tied,
    tail,
    wait_for_interrupt,
)
from tests.support.waiting import WaitTimeout, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra" / "kafka"
POM_PATH = INFRA_DIR / "pom.xml"
LOG4J2_CONFIG = INFRA_DIR / "log4j2.xml"

SCRAM_MECHANISM = "SCRAM-SHA-512"
DEFAULT_USERNAME = "queue-manager"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0

# C1-only JIT, serial GC and a small heap: the test broker carries little traffic, and on a
# 2-core machine start-up time and CPU left to the tests matter more than peak throughput.
JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)

_T = TypeVar("_T")


class KafkaBrokerError(RuntimeError):
    """The broker (or its classpath) could not be provisioned or started."""


# --------------------------------------------------------------------------- classpath


def kafka_version(pom: Path = POM_PATH) -> str:
    """The Kafka version pinned by ``infra/kafka/pom.xml`` (its ``kafka.version`` property)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise KafkaBrokerError(f"{pom}: no <kafka.version> property")
    return (node.text or "").strip()


def default_cache_dir() -> Path:
    """``$KAFKA_TEST_CACHE_DIR`` if set, else ``<repo>/.cache/kafka/<version>``."""
    override = os.environ.get("KAFKA_TEST_CACHE_DIR")
    if override:
        return Path(override)
    return REPO_ROOT / ".cache" / "kafka" / kafka_version()


def ensure_kafka_classpath(cache_dir: Path | None = None) -> Path:
    """Return the directory holding the broker's jars, downloading them on first use.

    The download is keyed by the content of the pom, so editing it refreshes the cache; a
    file lock makes concurrent sessions (e.g. pytest-xdist workers) download only once.
    """
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    libs = cache_dir / "libs"
    marker = cache_dir / "libs.complete"
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()
    if _read_text(marker) == digest:
        return libs

    cache_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(cache_dir / ".lock"):
        if _read_text(marker) == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaBrokerError("Maven (mvn) is not on PATH: it is needed once to fetch Kafka")
        staging = cache_dir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        marker.unlink(missing_ok=True)
        cmd = [
            mvn, "-q", "-B", "-f", str(POM_PATH), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            raise KafkaBrokerError(
                f"fetching the Kafka classpath failed ({' '.join(cmd)}, exit "
                f"{result.returncode}):\n{tail(result.stdout + result.stderr)}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        # Both pin the old jars.
        class_data_archive_path(cache_dir).unlink(missing_ok=True)
        _class_data_archive_failed_marker(cache_dir).unlink(missing_ok=True)
        staging.rename(libs)
        marker.write_text(digest)
    return libs


def class_data_archive_path(cache_dir: Path) -> Path:
    return cache_dir / "kafka-cds.jsa"


def _class_data_archive_failed_marker(cache_dir: Path) -> Path:
    return cache_dir / "kafka-cds.failed"


def ensure_class_data_archive(cache_dir: Path | None = None) -> Path | None:
    """Return a JVM class-data archive (AppCDS) of the broker's classes, making it on first use.

    Class loading is most of the broker's start-up: with the archive a start takes about 40 %
    less (4.7 s -> 2.8 s here). Making it costs one start and stop of a throw-away broker, once.
    A failure only means no archive (``None``, with a warning, not retried until the jars
    change); a stale archive is ignored by the JVM itself. ``KAFKA_TEST_CDS=0`` disables it.
    """
    if os.environ.get("KAFKA_TEST_CDS", "1") == "0":
        return None
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    archive = class_data_archive_path(cache_dir)
    failed = _class_data_archive_failed_marker(cache_dir)
    if archive.exists():
        return archive
    libs = ensure_kafka_classpath(cache_dir)
    with _file_lock(cache_dir / ".lock"):
        if archive.exists() or failed.exists():
            return archive if archive.exists() else None
        training_dir = cache_dir / "cds-training"
        partial = cache_dir / f"kafka-cds.jsa.{os.getpid()}.partial"
        shutil.rmtree(training_dir, ignore_errors=True)
        try:
            broker = _provision(
                training_dir,
                _java_command(libs, f"-XX:ArchiveClassesAtExit={partial}"),
                DEFAULT_USERNAME,
            )
            broker.start()
            broker.stop(timeout=60)  # the archive is written as the JVM exits
            if not partial.exists():
                raise KafkaBrokerError("the training broker wrote no archive")
            partial.rename(archive)
        except KafkaBrokerError as exc:
            failed.write_text(str(exc))
            warnings.warn(
                f"Kafka test broker: no class-data archive, starts will be slower: {exc}",
                stacklevel=2,
            )
        finally:
            partial.unlink(missing_ok=True)
            shutil.rmtree(training_dir, ignore_errors=True)
    return archive if archive.exists() else None


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path  # PEM, the clients' CA_PATH and the broker's truststore
    keystore: Path  # PEM: the broker's PKCS#8 key followed by its certificate chain


def generate_certificates(directory: Path) -> TlsFiles:
    """Make a throw-away CA and a broker certificate for ``localhost``/``127.0.0.1``."""
    tls = issue_server_cert(
        directory,
        directory / "broker.key",
        directory / "broker.pem",
        ca_name="queue-manager test CA",
        common_name="localhost",
        alt_names="DNS:localhost, IP:127.0.0.1",
        error=KafkaBrokerError,
    )
    # Kafka's PEM key store: the PKCS#8 key followed by the certificate chain.
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(tls.key.read_text() + tls.cert.read_text() + tls.ca_cert.read_text())
    keystore.chmod(0o600)
    ca_cert = tls.ca_cert
    return TlsFiles(ca_cert=ca_cert, keystore=keystore)


# --------------------------------------------------------------------------- the broker


@dataclass(eq=False)  # identity equality: brokers live in a set
class KafkaBroker:
    """A running (or stopped) single-node KRaft broker; see the module docstring."""

    plaintext_bootstrap: str
    sasl_ssl_bootstrap: str
    username: str
    password: str = field(repr=False)
    ca_path: str
    workdir: Path
    java: tuple[str, ...] = field(repr=False)  # the JVM launcher, options and classpath
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _output: IO[bytes] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def config_path(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client_kwargs(self, *, sasl: bool) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients on one of the two client listeners."""
        if not sasl:
            return {"bootstrap_servers": self.plaintext_bootstrap}
        from aiokafka.helpers import create_ssl_context

        return {
            "bootstrap_servers": self.sasl_ssl_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": create_ssl_context(cafile=self.ca_path),
        }

    def client_env(self, *, sasl: bool) -> dict[str, str]:
        """The platform's variables (docs/operations.md) that point queue-manager at this broker."""
        if not sasl:
            return {"KAFKA_BOOTSTRAP_SERVERS": self.plaintext_bootstrap}
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.sasl_ssl_bootstrap,
            "KAFKA_USER": self.username,
            "KAFKA_PASSWORD": self.password,
            "CA_PATH": self.ca_path,
        }

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the JVM (no-op if running) and wait until both client listeners answer."""
        with self._lock:
            if self.is_running:
                return
            self._close_output()
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._output = (self.log_dir / "broker.out").open("ab")
            cmd = [*self.java, f"-Dkafka.logs.dir={self.log_dir}", "kafka.Kafka"]
            self._process = spawn_tied(
                [*cmd, str(self.config_path)], cwd=self.workdir, output=self._output
            )
            _LIVE_BROKERS.add(self)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Shut the broker down cleanly (SIGTERM), killing it if it takes over ``timeout`` s."""
        self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash the broker (SIGKILL): no controlled shutdown, log recovery on the next start."""
        self._terminate(signal.SIGKILL, STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the JVM's console output and of the WARN+ server log."""
        parts = []
        for name in ("broker.out", "server.log"):
            text = _read_text(self.log_dir / name)
            if text:
                parts.append(f"--- {name} ---\n{tail(text, lines)}")
        return "\n".join(parts) or "(the broker wrote no log)"

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        with self._lock:
            process = self._process
            if process is not None and process.poll() is None:
                signal_group(process, sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    signal_group(process, signal.SIGKILL)
                    process.wait()
            # The JVM is its group's leader; sweep up anything it may have left in the group.
            if process is not None:
                signal_group(process, signal.SIGKILL)
            self._process = None
            self._close_output()
            _LIVE_BROKERS.discard(self)

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    def _wait_until_ready(self, timeout: float) -> None:
        ports = [_port_of(self.plaintext_bootstrap), _port_of(self.sasl_ssl_bootstrap)]
        last_error = "the listeners never opened"

        def ready() -> bool:
            nonlocal last_error
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise KafkaBrokerError(
                    f"the Kafka broker exited during start-up (exit {code}):\n{self.log_tail()}"
                )
            if not all(_port_open(port) for port in ports):
                return False
            try:
                _run_blocking(self._probe())
            except Exception as exc:  # the broker is still starting: retry until the deadline
                last_error = f"last probe: {type(exc).__name__}: {exc}"
                return False
            return True

        try:
            wait_until(ready, timeout, what="the Kafka broker to answer", every=0.2)
        except WaitTimeout:
            raise KafkaBrokerError(
                f"the Kafka broker did not answer within {timeout:.0f} s ({last_error}):\n"
                f"{self.log_tail()}"
            ) from None

    async def _probe(self) -> None:
        """Bootstrap a client on each listener and require an unfenced broker in the metadata.

        SASL_SSL is probed with the real credentials, so SCRAM is proven to work too.
        """
        from aiokafka import AIOKafkaProducer

        for sasl in (False, True):
            producer = AIOKafkaProducer(
                **self.client_kwargs(sasl=sasl),
                request_timeout_ms=3000,
                metadata_max_age_ms=1000,
                client_id="test-broker-probe",
            )
            try:
                await producer.start()
                if not producer.client.cluster.brokers():
                    raise KafkaBrokerError("no live broker in the metadata yet")
            finally:
                await producer.stop()


def start_broker(
    workdir: Path,
    cache_dir: Path | None = None,
    *,
    username: str = DEFAULT_USERNAME,
    timeout: float = START_TIMEOUT_S,
) -> KafkaBroker:
    """Provision a new broker in ``workdir`` (certificates, config, formatted storage) and
    start it; returns once both client listeners answer."""
    libs = ensure_kafka_classpath(cache_dir)
    archive = ensure_class_data_archive(cache_dir)
    jvm_options = [f"-XX:SharedArchiveFile={archive}"] if archive is not None else []
    broker = _provision(workdir, _java_command(libs, *jvm_options), username)
    broker.start(timeout)
    return broker


def _provision(workdir: Path, java: list[str], username: str) -> KafkaBroker:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tls = generate_certificates(workdir / "tls")
    plaintext_port, sasl_port, controller_port = free_ports(3)
    password = secrets.token_hex(16)
    broker = KafkaBroker(
        plaintext_bootstrap=f"127.0.0.1:{plaintext_port}",
        sasl_ssl_bootstrap=f"127.0.0.1:{sasl_port}",
        username=username,
        password=password,
        ca_path=str(tls.ca_cert),
        workdir=workdir,
        java=tuple(java),
    )
    broker.config_path.write_text(
        _server_properties(
            data_dir=workdir / "data",
            plaintext_port=plaintext_port,
            sasl_port=sasl_port,
            controller_port=controller_port,
            tls=tls,
        )
    )
    _format_storage(broker)
    return broker


def _server_properties(
    *, data_dir: Path, plaintext_port: int, sasl_port: int, controller_port: int, tls: TlsFiles
) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{plaintext_port},SASL_SSL://127.0.0.1:{sasl_port},"
            f"CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{plaintext_port},SASL_SSL://127.0.0.1:{sasl_port}"
        ),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,"
        "CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
        "listener.name.sasl_ssl.ssl.keystore.location": str(tls.keystore),
        "listener.name.sasl_ssl.ssl.truststore.type": "PEM",
        "listener.name.sasl_ssl.ssl.truststore.location": str(tls.ca_cert),
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        # Few internal partitions: creating 50 offsets partitions costs seconds on 2 cores.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
    }
    return "".join(f"{key}={_escape_property(value)}\n" for key, value in props.items())


def _cluster_id() -> str:
    """A random cluster id, never starting with '-': the storage tool's argument parser would
    take it for an option (one start in 64 failed). Kafka's own Uuid.randomUuid redraws too."""
    while (found := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))[0] == "-":
        pass
    return found


def _format_storage(broker: KafkaBroker) -> None:
    cluster_id = _cluster_id()
    scram = f"{SCRAM_MECHANISM}=[name={broker.username},password={broker.password}]"
    # Only the broker's own exit should write a class-data archive, not this short-lived tool.
    java = [opt for opt in broker.java if not opt.startswith("-XX:ArchiveClassesAtExit=")]
    cmd = [
        *java, f"-Dkafka.logs.dir={broker.log_dir}", "kafka.tools.StorageTool", "format",
        "-c", str(broker.config_path), "-t", cluster_id, "--add-scram", scram,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # The command line carries the SCRAM password: report the outcome, never the command.
        output = (result.stdout + result.stderr).replace(broker.password, "***")
        raise KafkaBrokerError(
            f"kafka.tools.StorageTool format failed (exit {result.returncode}):\n{tail(output)}"
        )


# --------------------------------------------------------------------------- processes

_LIVE_BROKERS: set[KafkaBroker] = set()


def _java_command(libs: Path, *extra_options: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise KafkaBrokerError("java is not on PATH: the test broker needs Java 17+")
    return [
        java, *JVM_OPTIONS, *extra_options,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}", "-cp", f"{libs}{os.sep}*",
    ]  # fmt: skip


@atexit.register
def _kill_live_brokers() -> None:
    for broker in list(_LIVE_BROKERS):
        broker.kill()


def _run_blocking(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when called inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --------------------------------------------------------------------------- small helpers


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _port_of(bootstrap: str) -> int:
    return int(bootstrap.rsplit(":", 1)[1])


def _escape_property(value: str) -> str:
    return value.replace("\\", "\\\\")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- command line


def _main(argv: list[str]) -> int:
    usage = "usage: python -m tests.support.kafka_broker {deps|run [WORKDIR]}"
    if not argv or argv[0] not in {"deps", "run"}:
        print(usage, file=sys.stderr)
        return 2
    try:
        if argv[0] == "deps":
            started = time.monotonic()
            libs = ensure_kafka_classpath()
            archive = ensure_class_data_archive()
            print(
                f"Kafka {kafka_version()} classpath: {libs}; class-data archive: {archive} "
                f"({time.monotonic() - started:.1f} s)"
            )
            return 0
        workdir = Path(argv[1]) if len(argv) > 1 else REPO_ROOT / ".cache" / "kafka-run"
        shutil.rmtree(workdir, ignore_errors=True)
        broker = start_broker(workdir)
    except KafkaBrokerError as exc:
        print(exc, file=sys.stderr)
        return 1
    env_file = workdir / "client.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in broker.client_env(sasl=True).items()))
    env_file.chmod(0o600)
    print(f"PLAINTEXT {broker.plaintext_bootstrap}  SASL_SSL {broker.sasl_ssl_bootstrap}")
    print(f"SASL_SSL settings (with the password): {env_file}. Ctrl-C stops the broker.")
    try:
        wait_for_interrupt()
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
