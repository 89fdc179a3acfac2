"""A real Kubernetes control plane for the tests, as controller-runtime's envtest runs one:
etcd, kube-apiserver and kube-controller-manager, built from their Go modules by
tests/support/k8s/build.sh and started here on free 127.0.0.1 ports, with their own
certificates, service-account keys, RBAC and two static tokens (an administrator, and a user
with no permissions of its own for RBAC tests). The API server writes an audit log (every
request's user, verb, object and answer: ``audit_events``). No kubelet, scheduler or operator
runs: the Strimzi CRDs are installed, and tests/support/strimzi_emulator.py plays the operator.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.processes import REPO_ROOT
from tests.support.services import LOOPBACK, free_port, stop_process, wait_for

K8S_DIR = REPO_ROOT / "tests" / "support" / "k8s"
STRIMZI_CRDS = REPO_ROOT.parent / "shared" / "testenv" / "strimzi-crds"
FIELD_MANAGER = "sluice-testenv"
ADMIN_USER = "sluice-test-admin"
LIMITED_USER = "sluice-test-limited"
# Every request, with who made it and the answer's code, but no bodies (Metadata level).
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}
# Controllers a namespace deletion, owner references and quotas need (nothing here runs pods,
# so no service-account, scheduling or workload controllers).
CONTROLLERS = [
    "namespace-controller",
    "garbage-collector-controller",
    "resourcequota-controller",
]


def versions(path: Path = K8S_DIR / "versions.env") -> dict[str, str]:
    """The pinned versions in a versions.env file (KEY=value lines)."""
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def cache_dir() -> Path:
    configured = os.environ.get("SLUICE_TESTENV_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sluice" / "testenv"


def binary(name: str) -> Path:
    version = versions()["ETCD_VERSION" if name == "etcd" else "KUBERNETES_VERSION"]
    path = cache_dir() / f"{name}-{version}" / name
    if not path.exists():
        subprocess.run(["bash", str(K8S_DIR / "build.sh")], check=True)
    return path


# Certificates -------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_public: Path
    sa_private: Path


def make_pki(directory: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def write_key(path: Path, key) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("sluice-testenv-ca"))
        .issuer_name(name("sluice-testenv-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = (
        x509.CertificateBuilder()
        .subject_name(name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_public=directory / "sa.pub",
        sa_private=directory / "sa.key",
    )
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    write_key(pki.serving_key, serving_key)
    write_key(pki.sa_private, sa_key)
    pki.sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


# The control plane --------------------------------------------------------------------------


class KubeTestEnvironment:
    """etcd + kube-apiserver + kube-controller-manager. Use as a context manager."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="sluice-kube-"))
        self.processes: dict[str, subprocess.Popen] = {}
        self.admin_token = secrets.token_urlsafe(32)
        self.limited_token = secrets.token_urlsafe(32)
        self.controller_manager_token = secrets.token_urlsafe(32)
        self.etcd_port = free_port()
        self.port = free_port()
        self.url = f"https://{LOOPBACK}:{self.port}"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.audit_log = self.workdir / "audit.log"
        self.limited_kubeconfig = self.workdir / "limited.kubeconfig"
        self.timings: dict[str, float] = {}

    # lifecycle

    def __enter__(self) -> KubeTestEnvironment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        atexit.register(self.stop)  # even if the test run is torn down abruptly
        binaries = {
            name: binary(name) for name in ("etcd", "kube-apiserver", "kube-controller-manager")
        }
        started = time.monotonic()
        self.pki = make_pki(self.workdir)
        self._write_tokens()
        self._start_etcd(binaries["etcd"])
        self.timings["etcd"] = time.monotonic() - started
        self._start_apiserver(binaries["kube-apiserver"])
        self.timings["apiserver"] = time.monotonic() - started
        self._write_kubeconfig(self.kubeconfig, self.admin_token, ADMIN_USER)
        self._write_kubeconfig(self.limited_kubeconfig, self.limited_token, LIMITED_USER)
        self._write_kubeconfig(
            self.workdir / "kcm.kubeconfig", self.controller_manager_token, "kcm"
        )
        # CRDs first: the garbage collector discovers resource types when it starts, and would
        # otherwise learn of Strimzi's only at its next periodic resync (owned Secrets linger).
        self.install_strimzi_crds()
        self._start_controller_manager(binaries["kube-controller-manager"])
        self.timings["ready"] = time.monotonic() - started

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            process = self.processes.get(name)
            if process is not None:
                stop_process(process, sig=signal.SIGTERM, timeout=20)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # pieces

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it open
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
        )
        self.processes[name] = process
        return process

    def _write_tokens(self) -> None:
        # token,user,uid,"groups": the administrator is a cluster superuser (system:masters);
        # the limited user has no binding at all, so RBAC tests grant it what they need.
        (self.workdir / "tokens.csv").write_text(
            f'{self.admin_token},{ADMIN_USER},1,"system:masters"\n'
            f"{self.limited_token},{LIMITED_USER},2\n"
            f'{self.controller_manager_token},system:kube-controller-manager,3,"system:masters"\n'
        )

    def _start_etcd(self, path: Path) -> None:
        peer_port = free_port()
        process = self._spawn(
            "etcd",
            [
                str(path),
                "--name=sluice-testenv",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://{LOOPBACK}:{self.etcd_port}",
                f"--advertise-client-urls=http://{LOOPBACK}:{self.etcd_port}",
                f"--listen-peer-urls=http://{LOOPBACK}:{peer_port}",
                f"--initial-advertise-peer-urls=http://{LOOPBACK}:{peer_port}",
                f"--initial-cluster=sluice-testenv=http://{LOOPBACK}:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_for(
            lambda: self._http_ok(f"http://{LOOPBACK}:{self.etcd_port}/health"),
            timeout=60,
            what=f"etcd (log: {self.workdir / 'etcd.log'})",
            process=process,
        )

    def _start_apiserver(self, path: Path) -> None:
        audit_policy = self.workdir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        process = self._spawn(
            "kube-apiserver",
            [
                str(path),
                f"--etcd-servers=http://{LOOPBACK}:{self.etcd_port}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={self.port}",
                f"--tls-cert-file={self.pki.serving_cert}",
                f"--tls-private-key-file={self.pki.serving_key}",
                f"--client-ca-file={self.pki.ca_cert}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.url}",
                f"--service-account-key-file={self.pki.sa_public}",
                f"--service-account-signing-key-file={self.pki.sa_private}",
                # A range for Service IPs is mandatory; nothing is routed to it here.
                "--service-cluster-ip-range=10.96.0.0/24",
                "--allow-privileged=true",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                # Written before the answer is sent: a test reads what it just did.
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=0",
                "--v=1",
            ],
        )
        wait_for(
            lambda: self._http_ok(f"{self.url}/readyz", token=self.admin_token),
            timeout=120,
            what=f"kube-apiserver (log: {self.workdir / 'kube-apiserver.log'})",
            process=process,
        )

    def _start_controller_manager(self, path: Path) -> None:
        self._spawn(
            "kube-controller-manager",
            [
                str(path),
                f"--kubeconfig={self.workdir / 'kcm.kubeconfig'}",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={self.pki.sa_private}",
                f"--root-ca-file={self.pki.ca_cert}",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={free_port()}",
                "--concurrent-namespace-syncs=5",
                "--concurrent-gc-syncs=10",
                "--resource-quota-sync-period=5s",
                "--v=1",
            ],
        )

    def _write_kubeconfig(self, path: Path, token: str, user: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sluice-testenv",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "sluice-testenv", "context": {"cluster": "sluice-testenv", "user": user}}
            ],
            "current-context": "sluice-testenv",
        }
        path.write_text(yaml.safe_dump(config))

    def _http_ok(self, url: str, token: str | None = None) -> bool:
        context = (
            ssl.create_default_context(cafile=str(self.pki.ca_cert))
            if url.startswith("https")
            else None
        )
        request = urllib.request.Request(url)  # noqa: S310 - loopback only
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    # the audit log

    def audit_offset(self) -> int:
        """Where the audit log ends now: ``audit_events(since=...)`` reads what came after."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit_events(self, *, since: int = 0, user: str | None = None) -> list[dict]:
        """The API server's audit events (``audit.k8s.io/v1`` Event: ``user.username``,
        ``verb``, ``objectRef``, ``responseStatus.code``…) written after offset ``since``, of
        ``user`` only if given."""
        import json

        with self.audit_log.open("rb") as log:
            log.seek(since)
            # Whole lines only: the last may be being written.
            lines = log.read().decode(errors="replace").split("\n")[:-1]
        events = [json.loads(line) for line in lines if line.strip()]
        return [e for e in events if user is None or e.get("user", {}).get("username") == user]

    # clients

    def api_client(self, *, limited: bool = False):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.limited_kubeconfig if limited else self.kubeconfig),
            client_configuration=configuration,
        )
        return client.ApiClient(configuration)

    def dynamic_client(self, *, limited: bool = False):
        from kubernetes import dynamic

        return dynamic.DynamicClient(self.api_client(limited=limited))

    # Strimzi

    def install_strimzi_crds(self) -> list[str]:
        """Server-side apply every Strimzi CRD (the Kafka CRD is too large for client-side
        apply's annotation) and wait until each is established."""
        dyn = self.dynamic_client()
        crds = dyn.resources.get(
            api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
        )
        names = []
        if not any(STRIMZI_CRDS.glob("*.yaml")):
            raise RuntimeError(
                f"No Strimzi CRDs in {STRIMZI_CRDS}: the test environment reads them from "
                "shared/testenv/strimzi-crds/ beside the repository"
            )
        for path in sorted(STRIMZI_CRDS.glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            crds.server_side_apply(body=body, field_manager=FIELD_MANAGER, force_conflicts=True)
            names.append(body["metadata"]["name"])

        def established() -> bool:
            for name in names:
                conditions = (crds.get(name=name).status or {}).get("conditions") or []
                if not any(
                    c["type"] == "Established" and c["status"] == "True" for c in conditions
                ):
                    return False
            return True

        wait_for(established, timeout=60, what="the Strimzi CRDs to be established")
        return names


# Between tests --------------------------------------------------------------------------------


def namespace_names(environment: KubeTestEnvironment, *, terminating: bool = True) -> set[str]:
    """The namespaces there are; without those on their way out if ``terminating`` is False
    (a test may make one of the same name again, which is then its own to delete)."""
    from kubernetes import client

    core = client.CoreV1Api(environment.api_client())
    return {
        ns.metadata.name
        for ns in core.list_namespace().items
        if terminating or (ns.status and ns.status.phase) != "Terminating"
    }


def delete_test_leftovers(
    environment: KubeTestEnvironment,
    *,
    keep_namespaces: set[str],
    owned_label: str,
    wait: bool = False,
) -> set[str]:
    """Delete what a test made. The namespace controller waits a fixed 5 seconds before it
    acts on a deletion, so by default this does not wait for namespaces to disappear: each test
    works in namespaces of its own, and the next test need not pay for the last one's."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = environment.api_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    selector = f"{owned_label}=true"
    for role in rbac.list_cluster_role_binding(label_selector=selector).items:
        rbac.delete_cluster_role_binding(role.metadata.name)
    for role in rbac.list_cluster_role(label_selector=selector).items:
        rbac.delete_cluster_role(role.metadata.name)
    doomed = namespace_names(environment) - keep_namespaces
    for name in doomed:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
    if wait:
        wait_for(
            lambda: not (namespace_names(environment) & doomed),
            timeout=120,
            what=f"test namespaces {sorted(doomed)} to be deleted",
        )
    return doomed


if __name__ == "__main__":
    # python -m tests.support.kubeenv [runs]: how long the environment takes to start.
    import statistics
    import sys

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
        binary(name)
    durations = []
    for run in range(runs):
        started = time.monotonic()
        with KubeTestEnvironment() as environment:
            durations.append(time.monotonic() - started)
            print(f"run {run + 1}: ready in {durations[-1]:.1f}s {environment.timings}")
    median = statistics.median(durations)
    print(f"median start (etcd + apiserver + controller-manager + CRDs): {median:.1f}s")
