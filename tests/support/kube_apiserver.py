"""A real kube-apiserver backed by a real etcd for the test suite, started the way envtest does.

The binaries are built from the Go module proxy by ``infra/kube/build.sh`` (``make kube-bins``)
into ``.cache/kube/<k8s-version>/kube-apiserver`` and ``.cache/kube/etcd-<version>/etcd``;
``ensure_binaries()`` runs that script (a no-op once the binaries exist). ``KUBE_APISERVER_BIN``
and ``ETCD_BIN`` point at other binaries instead.

What runs (no controller-manager, no scheduler, no kubelet: nothing runs a Job; tests move a
Job's status themselves through the ``/status`` subresource, see ``failed_job_status()``):

* etcd on 127.0.0.1, its data directory on tmpfs (``/dev/shm``) when there is one;
* kube-apiserver on ``https://127.0.0.1:<free port>`` with

  - a serving certificate for ``localhost``/``127.0.0.1`` signed by a fresh CA (``ca_path``),
    written to ``--cert-dir`` as ``apiserver.crt``/``apiserver.key``,
  - a service-account signing key pair, so the TokenRequest API issues real tokens,
  - ``--token-auth-file`` holding one admin token (group ``system:masters``),
  - ``--authorization-mode=RBAC``: a ServiceAccount can do exactly what its Roles allow,
  - the ``ServiceAccount`` admission plugin disabled (no controller creates the ``default``
    ServiceAccount of a namespace, so Pods could not be created with it on).

Usage from a script (pytest users take the ``kube_apiserver`` fixture of ``kube_fixtures``)::

    server = start_kube_apiserver(workdir)
    token = server.service_account_token("ns", "launcher")
    server.write_kubeconfig(workdir / "launcher.kubeconfig", token, namespace="ns")
    ...
    server.stop()

Command line::

    python -m tests.support.kube_apiserver run [WORKDIR]   # run one in the foreground
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tests.support.certs import issue_server_cert, openssl
from tests.support.processes import (
    free_ports,
    signal_group,
    spawn_tied,
    tail,
    wait_for_interrupt,
)
from tests.support.waiting import WaitTimeout, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "infra" / "kube" / "build.sh"

ADMIN_USER = "admin"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
TMPFS = Path("/dev/shm")
_ETCD_DIR_PREFIX = "qm-kube-etcd-"

_LIVE: set[KubeAPIServer] = set()


class KubeAPIServerError(RuntimeError):
    """The binaries could not be built, or etcd / kube-apiserver did not start."""


class KubeRequestError(RuntimeError):
    """The API server answered a request made by ``KubeAPIServer.request`` with an error."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


# --------------------------------------------------------------------------- binaries


@dataclass(frozen=True)
class KubeBinaries:
    kube_apiserver: Path
    etcd: Path


def kube_version() -> str:
    """The k8s.io/kubernetes version ``infra/kube/go.mod`` pins, e.g. ``v1.37.2``."""
    for line in (REPO_ROOT / "infra" / "kube" / "go.mod").read_text().splitlines():
        words = line.split("//", 1)[0].split()  # "k8s.io/kubernetes v1.37.2 // indirect"
        if words[:2] == ["require", "k8s.io/kubernetes"] or words[:1] == ["k8s.io/kubernetes"]:
            return words[-1]
    raise KubeAPIServerError("infra/kube/go.mod requires no k8s.io/kubernetes")


def ensure_binaries() -> KubeBinaries:
    """The binaries to run: ``KUBE_APISERVER_BIN``/``ETCD_BIN`` if both are set, else the ones
    ``infra/kube/build.sh`` builds (a cold build takes ~10 minutes on 2 cores; later calls
    only check the cache)."""
    apiserver_env, etcd_env = os.environ.get("KUBE_APISERVER_BIN"), os.environ.get("ETCD_BIN")
    if apiserver_env and etcd_env:
        return KubeBinaries(kube_apiserver=Path(apiserver_env), etcd=Path(etcd_env))
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print"],
        stdout=subprocess.PIPE,
        stderr=None,  # build progress goes straight to the terminal
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KubeAPIServerError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    paths = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    try:
        return KubeBinaries(kube_apiserver=Path(paths["KUBE_APISERVER"]), etcd=Path(paths["ETCD"]))
    except KeyError as exc:
        raise KubeAPIServerError(f"{BUILD_SCRIPT} printed no {exc}: {result.stdout!r}") from exc


# --------------------------------------------------------------------------- key material


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_private_key: Path
    sa_public_key: Path


def _generate_pki(cert_dir: Path, keys_dir: Path) -> _Pki:
    """A throw-away CA, a serving certificate signed by it in ``cert_dir`` (the names
    kube-apiserver looks for there), and an RSA key pair that signs service-account tokens."""
    tls = issue_server_cert(
        keys_dir,
        cert_dir / "apiserver.key",
        cert_dir / "apiserver.crt",
        ca_name="queue-manager test kube CA",
        common_name="kube-apiserver",
        alt_names="DNS:localhost, IP:127.0.0.1, DNS:kubernetes, DNS:kubernetes.default,"
        " DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:10.0.0.1",
        error=KubeAPIServerError,
    )
    sa_key, sa_pub = keys_dir / "sa.key", keys_dir / "sa.pub"
    openssl(
        [
            ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sa_key],
            ["pkey", "-in", sa_key, "-pubout", "-out", sa_pub],
        ],
        KubeAPIServerError,
    )
    sa_key.chmod(0o600)
    ca_cert, cert, key = tls.ca_cert, tls.cert, tls.key
    return _Pki(ca_cert, cert, key, sa_key, sa_pub)


# --------------------------------------------------------------------------- the server


@dataclass(eq=False)  # identity equality: servers live in a set
class KubeAPIServer:
    """A running kube-apiserver + etcd pair. ``stop()`` ends both and removes etcd's data."""

    url: str  # https://127.0.0.1:<port>
    ca_path: Path  # PEM of the CA that signed the serving certificate
    admin_token: str  # bearer token of a system:masters user
    kubeconfig_path: Path  # kubeconfig for the admin token
    workdir: Path
    etcd_url: str
    etcd_data_dir: Path
    # name -> process, in start order (etcd first)
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _outputs: list[IO[bytes]] = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------- lifecycle

    @property
    def apiserver_log(self) -> Path:
        return self.workdir / "kube-apiserver.log"

    @property
    def etcd_log(self) -> Path:
        return self.workdir / "etcd.log"

    def is_running(self) -> bool:
        return bool(self._processes) and all(p.poll() is None for p in self._processes.values())

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM kube-apiserver then etcd (SIGKILL after ``timeout``); idempotent."""
        for process in reversed(self._processes.values()):  # the API server first, etcd last
            if process.poll() is None:
                signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    signal_group(process, signal.SIGKILL)
                    process.wait(timeout=timeout)
            else:
                signal_group(process, signal.SIGKILL)  # leftovers of its group, if any
        self._processes.clear()
        for output in self._outputs:
            output.close()
        self._outputs.clear()
        shutil.rmtree(self.etcd_data_dir, ignore_errors=True)
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL both processes at once (used at interpreter exit)."""
        for process in self._processes.values():
            signal_group(process, signal.SIGKILL)
        self.stop(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for name, path in (("kube-apiserver", self.apiserver_log), ("etcd", self.etcd_log)):
            text = _read_text(path)
            if text:
                parts.append(f"--- {name} ({path}) ---\n{tail(text, lines)}")
        return "\n".join(parts) or "(no log output)"

    # ----------------------------------------------------------------- client helpers

    def kubeconfig(self, token: str, *, namespace: str | None = None) -> dict[str, Any]:
        """A kubeconfig (as a dict) that reaches this server with ``token``."""
        context: dict[str, Any] = {"cluster": "test", "user": "user"}
        if namespace is not None:
            context["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_path)},
                }
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": context}],
            "current-context": "test",
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path, token: str, *, namespace: str | None = None) -> Path:
        """Write a kubeconfig for ``token`` to ``path`` (JSON, which every YAML reader takes)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.kubeconfig(token, namespace=namespace), indent=2))
        path.chmod(0o600)
        return path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> Any:
        """A blocking JSON request as the admin (or as ``token``); raises ``KubeRequestError``
        on an HTTP error. For setup and checks; the code under test uses its own client."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin_token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise KubeRequestError(exc.code, exc.read().decode(errors="replace")) from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw.decode(errors="replace")

    def service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        expiration_seconds: int = 3600,
        audiences: list[str] | None = None,
        create: bool = True,
    ) -> str:
        """A bound token for ServiceAccount ``namespace/name`` from the TokenRequest API
        (``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token``). With ``create`` the
        ServiceAccount is created first if it does not exist (the namespace must)."""
        base = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        if create:
            try:
                self.request(
                    "POST",
                    base,
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
                )
            except KubeRequestError as exc:
                if exc.status != 409:  # 409: it exists already
                    raise
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences is not None:
            spec["audiences"] = audiences
        answer = self.request(
            "POST",
            f"{base}/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        token: str = answer["status"]["token"]
        return token


def start_kube_apiserver(
    workdir: Path,
    binaries: KubeBinaries | None = None,
    *,
    timeout: float = START_TIMEOUT_S,
    extra_args: list[str] | None = None,
) -> KubeAPIServer:
    """Start etcd and kube-apiserver; return once ``/readyz`` answers ``ok``.

    ``workdir`` keeps the certificates, keys, token file, kubeconfig and logs; etcd's data goes
    to tmpfs when there is one. Raises ``KubeAPIServerError`` with the logs' tail on failure.
    """
    binaries = binaries or ensure_binaries()
    for binary in (binaries.kube_apiserver, binaries.etcd):
        if not os.access(binary, os.X_OK):
            raise KubeAPIServerError(f"{binary} is not an executable: run `make kube-bins`")
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = _generate_pki(workdir / "certs", workdir / "pki")
    admin_token = secrets.token_urlsafe(32)
    token_file = workdir / "tokens.csv"
    token_file.write_text(f'{admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    token_file.chmod(0o600)
    _remove_stale_etcd_dirs()
    etcd_data_dir = Path(  # the pid lets a later run remove it if this process is killed
        tempfile.mkdtemp(
            prefix=f"{_ETCD_DIR_PREFIX}{os.getpid()}-",
            dir=TMPFS if TMPFS.is_dir() and os.access(TMPFS, os.W_OK) else workdir,
        )
    )

    etcd_client_port, etcd_peer_port, secure_port = free_ports(3)
    server = KubeAPIServer(
        url=f"https://127.0.0.1:{secure_port}",
        ca_path=pki.ca_cert,
        admin_token=admin_token,
        kubeconfig_path=workdir / "admin.kubeconfig",
        workdir=workdir,
        etcd_url=f"http://127.0.0.1:{etcd_client_port}",
        etcd_data_dir=etcd_data_dir,
    )
    server.write_kubeconfig(server.kubeconfig_path, admin_token)
    _LIVE.add(server)
    try:
        etcd_cmd = [
            str(binaries.etcd),
            "--name=test",
            f"--data-dir={etcd_data_dir}",
            f"--listen-client-urls={server.etcd_url}",
            f"--advertise-client-urls={server.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-cluster=test=http://127.0.0.1:{etcd_peer_port}",
            "--unsafe-no-fsync=true",  # tmpfs, throw-away data
            "--log-level=warn",
        ]
        _start_process(server, "etcd", etcd_cmd, server.etcd_log)
        _wait_until(
            server,
            lambda: _etcd_healthy(server.etcd_url),
            timeout,
            "etcd to become healthy",
        )
        apiserver_cmd = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={server.etcd_url}",
            f"--cert-dir={pki.serving_cert.parent}",
            f"--secure-port={secure_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # a loopback address cannot be an endpoint
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            f"--token-auth-file={token_file}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            "--disable-admission-plugins=ServiceAccount",
            "--profiling=false",
            *(extra_args or []),
        ]
        _start_process(server, "kube-apiserver", apiserver_cmd, server.apiserver_log)
        _wait_until(
            server,
            lambda: _apiserver_ready(server),
            timeout,
            "kube-apiserver to become ready",
        )
    except BaseException:
        server.kill()
        raise
    return server


# --------------------------------------------------------------------------- Job status helpers


def rfc3339(moment: datetime | None = None) -> str:
    """``moment`` (default: now) the way the API server writes times (UTC, seconds)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, reason: str, message: str, at: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": at,
        "lastTransitionTime": at,
    }


def failed_job_status(
    *,
    reason: str = "BackoffLimitExceeded",
    message: str = "Job has reached the specified backoff limit",
    failed: int = 1,
    start_time: str | None = None,
) -> dict[str, Any]:
    """A ``status`` the API server accepts for a Job that failed, as the Job controller writes
    it: ``startTime`` set, ``active`` 0, a ``FailureTarget`` condition alongside ``Failed``,
    and no ``completionTime`` (only Complete Jobs may have one). Send it as
    ``{"status": failed_job_status()}`` in a merge patch of the ``/status`` subresource.
    ``startTime`` cannot change once set: pass the Job's own if it has one."""
    now = rfc3339()
    return {
        "startTime": start_time or now,
        "active": 0,
        "ready": 0,
        "failed": failed,
        "conditions": [
            _condition("FailureTarget", reason, message, now),
            _condition("Failed", reason, message, now),
        ],
    }


def succeeded_job_status(*, succeeded: int = 1, start_time: str | None = None) -> dict[str, Any]:
    """A ``status`` for a Job that completed: ``startTime`` <= ``completionTime``, ``active``
    0, a ``SuccessCriteriaMet`` condition alongside ``Complete``."""
    now = rfc3339()
    reason, message = "CompletionsReached", "Reached expected number of succeeded pods"
    return {
        "startTime": start_time or now,
        "completionTime": now,
        "active": 0,
        "ready": 0,
        "succeeded": succeeded,
        "conditions": [
            _condition("SuccessCriteriaMet", reason, message, now),
            _condition("Complete", reason, message, now),
        ],
    }


def running_job_status(*, active: int = 1, start_time: str | None = None) -> dict[str, Any]:
    """A ``status`` for a Job whose pod runs."""
    return {"startTime": start_time or rfc3339(), "active": active, "ready": active}


# --------------------------------------------------------------------------- processes


def _start_process(server: KubeAPIServer, name: str, cmd: list[str], log: Path) -> None:
    output = log.open("ab")
    server._outputs.append(output)
    server._processes[name] = spawn_tied(cmd, cwd=server.workdir, output=output)


@atexit.register
def _kill_live_servers() -> None:
    for server in list(_LIVE):
        server.kill()


def _remove_stale_etcd_dirs() -> None:
    """Remove tmpfs data directories left by test processes that were killed outright."""
    if not TMPFS.is_dir():
        return
    for path in TMPFS.glob(f"{_ETCD_DIR_PREFIX}*"):
        pid_text = path.name[len(_ETCD_DIR_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- readiness


def _wait_until(server: KubeAPIServer, probe: Callable[[], bool], within: float, what: str) -> None:
    """Wait for `probe()`, failing at once if one of the server's processes exits."""

    def check() -> bool:
        for name, process in server._processes.items():
            if process.poll() is not None:
                raise KubeAPIServerError(
                    f"waiting for {what}: {name} exited with code {process.returncode}\n"
                    f"{server.log_tail()}"
                )
        return probe()

    try:
        wait_until(check, within, what=what, every=0.2)
    except WaitTimeout as exc:
        raise KubeAPIServerError(f"{exc}\n{server.log_tail()}") from None


def _etcd_healthy(etcd_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{etcd_url}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _apiserver_ready(server: KubeAPIServer) -> bool:
    try:
        return bool(server.request("GET", "/readyz", timeout=2) == "ok")
    except (OSError, KubeRequestError, ValueError):
        return False


# --------------------------------------------------------------------------- small helpers


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- command line


def _main(argv: list[str]) -> int:
    usage = "usage: python -m tests.support.kube_apiserver run [WORKDIR]"
    if not argv or argv[0] != "run" or len(argv) > 2:
        print(usage, file=sys.stderr)
        return 2
    workdir = Path(argv[1]) if len(argv) == 2 else Path(tempfile.mkdtemp(prefix="qm-kube-"))
    try:
        started = time.monotonic()
        server = start_kube_apiserver(workdir)
    except KubeAPIServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"kube-apiserver ready in {time.monotonic() - started:.1f}s at {server.url}")
    print(f"  KUBECONFIG={server.kubeconfig_path}")
    print(f"  kubectl --kubeconfig {server.kubeconfig_path} get ns")
    print("Ctrl-C stops it.")
    try:
        wait_for_interrupt()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
