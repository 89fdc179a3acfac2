"""A cell's credentials: a kubeconfig, or an API server URL, CA certificate and token, checked
and reduced to the current context (refusals never quote what was given), sealed, never shown
back by the admin, and used by the driver against the real test API server, its clients keyed
by the credentials' fingerprint so that replaced ones take effect."""

import base64

import pytest
import yaml
from django.contrib.admin.models import LogEntry
from kubernetes import client

from clusters import cell_credentials, drivers
from clusters.cell_credentials import InvalidCredentials
from clusters.drivers.kubernetes import KubernetesDriver
from clusters.models import Cell
from clusters.services.cells import cell_register
from foundation import secretbox
from tests.factories import UserFactory
from tests.support.cells import kube_credentials
from tests.support.kubeenv import ADMIN_USER, make_pki

TOKEN = "a-bearer-token-that-must-never-be-echoed-0123456789"


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory) -> str:
    """A CA certificate that no server here is signed by."""
    return make_pki(tmp_path_factory.mktemp("pki")).ca_cert.read_text()


def kubeconfig_text(
    *, server: str, ca_pem: str, token: str = TOKEN, cluster: dict | None = None, **top
) -> str:
    """A kubeconfig of two contexts, the current one reaching ``server`` with ``token``."""
    ca_data = base64.b64encode(ca_pem.encode()).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "main",
                "cluster": cluster or {"server": server, "certificate-authority-data": ca_data},
            },
            {
                "name": "other",
                "cluster": {
                    "server": "https://other.example",
                    "certificate-authority-data": ca_data,
                },
            },
        ],
        "users": [
            {"name": "operator", "user": {"token": token}},
            {"name": "other", "user": {"token": "another-token-of-another-cluster-entirely"}},
        ],
        "contexts": [
            {"name": "main", "context": {"cluster": "main", "user": "operator"}},
            {"name": "other", "context": {"cluster": "other", "user": "other"}},
        ],
        "current-context": "main",
        **top,
    }
    return yaml.safe_dump(document)


# Checking what is given -------------------------------------------------------------------


def test_a_kubeconfig_is_reduced_to_its_current_context(ca_pem):
    kubeconfig = cell_credentials.from_kubeconfig(
        kubeconfig_text(server="https://kube.example:6443", ca_pem=ca_pem)
    )
    assert kubeconfig["current-context"] == "cell"
    assert [c["cluster"]["server"] for c in kubeconfig["clusters"]] == ["https://kube.example:6443"]
    assert [u["user"] for u in kubeconfig["users"]] == [{"token": TOKEN}]
    assert "another-token" not in repr(kubeconfig)
    # The same credentials given the other way are the same document, the same fingerprint.
    same = cell_credentials.from_token(
        server="https://kube.example:6443", ca_certificate=ca_pem, token=f"{TOKEN}\n"
    )
    fingerprints = [
        cell_credentials.sealed_columns(k)["credentials_fingerprint"] for k in (kubeconfig, same)
    ]
    assert fingerprints[0] == fingerprints[1]


def refusal_cases(ca_pem: str) -> dict[str, tuple[str, str]]:
    """What is given, and the words of its refusal."""
    server = "https://kube.example"
    ca_data = base64.b64encode(ca_pem.encode()).decode()

    def user(**body) -> str:
        document = yaml.safe_load(kubeconfig_text(server=server, ca_pem=ca_pem))
        document["users"][0]["user"] = body
        return yaml.safe_dump(document)

    def cluster(**body) -> str:
        return kubeconfig_text(server=server, ca_pem=ca_pem, cluster={"server": server, **body})

    return {
        "not yaml": (f"users: [{{token: {TOKEN}", "not valid YAML"),
        "not a mapping": (f"- {TOKEN}", "not a YAML mapping"),
        "no current context": (
            kubeconfig_text(server=server, ca_pem=ca_pem, **{"current-context": ""}),
            "names no current-context",
        ),
        "a current context that is not there": (
            kubeconfig_text(server=server, ca_pem=ca_pem, **{"current-context": "gone"}),
            "exactly one context named 'gone'",
        ),
        "plain http": (kubeconfig_text(server="http://kube.example", ca_pem=ca_pem), "https://"),
        "a CA file": (cluster(**{"certificate-authority": "/etc/ca.crt"}), "by a file path"),
        "no CA": (cluster(), "no certificate-authority-data"),
        "no TLS verification": (
            cluster(**{"certificate-authority-data": ca_data, "insecure-skip-tls-verify": True}),
            "TLS verification off",
        ),
        "a CA that is no certificate": (
            cluster(**{"certificate-authority-data": base64.b64encode(b"junk").decode()}),
            "not a PEM X.509 certificate",
        ),
        "an exec plugin": (
            user(token=TOKEN, exec={"command": "aws", "apiVersion": "v1"}),
            "a command to run (exec)",
        ),
        "a token file": (user(tokenFile="/var/run/token"), "a token file"),
        "no credentials": (user(), "has no credentials"),
        "a token of two lines": (user(token=f"{TOKEN}\nsecond"), "one line"),
    }


def test_what_cannot_be_used_is_refused_without_quoting_it(ca_pem):
    for case, (text, words) in refusal_cases(ca_pem).items():
        with pytest.raises(InvalidCredentials) as refused:
            cell_credentials.from_kubeconfig(text)
        assert words in str(refused.value), case
        assert TOKEN not in str(refused.value), case


@pytest.mark.parametrize(
    ("server", "ca", "token", "words"),
    [
        ("kube.example", "ca", TOKEN, "https:// URL"),
        ("https://user:pw@kube.example", "ca", TOKEN, "must not carry"),
        ("https://kube.example", "-----BEGIN CERTIFICATE-----\nnope", TOKEN, "not a PEM"),
        ("https://kube.example", "ca", "  ", "one line"),
    ],
)
def test_a_url_ca_and_token_are_checked(ca_pem, server, ca, token, words):
    with pytest.raises(InvalidCredentials, match=words):
        cell_credentials.from_token(
            server=server, ca_certificate=ca_pem if ca == "ca" else ca, token=token
        )


# The admin --------------------------------------------------------------------------------


def cell_form(**fields) -> dict:
    return {
        "slug": "eu-west-1-k",
        "cloud": "aws",
        "region": "eu-west-1",
        "accepting": "on",
        "shared_kafka_namespace": "sluice-shared",
        "shared_kafka_name": "shared",
        "shared_bootstrap": "",
        "shared_kafka_brokers": "3",
        "max_shared_clusters": "1000",
        "max_dedicated_units": "50",
        "max_shared_partitions": "12000",
        "prometheus_url": "",
        "test_connection": "on",
        **fields,
    }


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.kube
@pytest.mark.django_db
def test_an_operator_pastes_a_kubeconfig_that_is_sealed_and_never_shown_back(operator_client, kube):
    pasted = kubeconfig_text(
        server=kube.url, ca_pem=kube.pki.ca_cert.read_text(), token=kube.admin_token
    )
    added = operator_client.post("/admin/clusters/cell/add/", cell_form(kubeconfig=pasted))
    assert added.status_code == 302, added.content.decode()

    cell = Cell.objects.get(slug="eu-west-1-k")
    assert cell.api_server == kube.url
    opened = yaml.safe_load(secretbox.unseal(cell.credentials_sealed))
    assert opened["users"][0]["user"] == {"token": kube.admin_token}
    page = operator_client.get(f"/admin/clusters/cell/{cell.pk}/change/").content.decode()
    assert f"set: {kube.url}, sha256:{cell.credentials_fingerprint[:16]}" in page
    assert kube.admin_token not in page
    assert kube.admin_token not in repr(list(LogEntry.objects.values()))

    # Saving other fields keeps the credentials; clearing them forgets them.
    kept = operator_client.post(
        f"/admin/clusters/cell/{cell.pk}/change/", cell_form(shared_kafka_brokers="5")
    )
    assert kept.status_code == 302
    cell.refresh_from_db()
    assert (cell.shared_kafka_brokers, cell.api_server) == (5, kube.url)
    operator_client.post(
        f"/admin/clusters/cell/{cell.pk}/change/", cell_form(clear_credentials="on")
    )
    cell.refresh_from_db()
    assert (cell.credentials_sealed, cell.credentials_fingerprint, cell.api_server) == (
        None,
        "",
        "",
    )


@pytest.mark.kube
@pytest.mark.django_db
def test_the_admin_refuses_malformed_credentials_and_ones_the_server_does_not_take(
    operator_client, kube, ca_pem
):
    malformed = operator_client.post(
        "/admin/clusters/cell/add/", cell_form(kubeconfig=f"users: [{{token: {TOKEN}")
    )
    assert malformed.status_code == 200
    assert "The kubeconfig is not valid YAML." in malformed.content.decode()
    assert TOKEN not in malformed.content.decode()  # not even in the textarea
    assert malformed.context["adminform"].form.errors == {
        "kubeconfig": ["The kubeconfig is not valid YAML."]
    }

    half = operator_client.post(
        "/admin/clusters/cell/add/", cell_form(server=kube.url, token=TOKEN)
    )
    assert "go together" in half.content.decode()
    # Beside the URL, CA and token the operator filled in, not above the whole form.
    assert list(half.context["adminform"].form.errors) == ["server"]

    # A CA that did not sign the server's certificate: the check reports what went wrong.
    wrong_ca = operator_client.post(
        "/admin/clusters/cell/add/",
        cell_form(server=kube.url, ca_certificate=ca_pem, token=kube.admin_token),
    )
    page = wrong_ca.content.decode()
    assert "The API server did not answer with these credentials" in page
    assert "CERTIFICATE_VERIFY_FAILED" in page or "certificate verify failed" in page
    assert kube.admin_token not in page
    assert not Cell.objects.filter(slug="eu-west-1-k").exists()

    # The right CA, given as URL, CA and token, is taken.
    right = operator_client.post(
        "/admin/clusters/cell/add/",
        cell_form(
            server=kube.url, ca_certificate=kube.pki.ca_cert.read_text(), token=kube.admin_token
        ),
    )
    assert right.status_code == 302
    assert Cell.objects.get(slug="eu-west-1-k").api_server == kube.url


# The driver -------------------------------------------------------------------------------


def service_account_token(kube, namespace: str, name: str) -> str:
    """A token of a new ServiceAccount, by the TokenRequest API (as ``kubectl create token``)."""
    core = client.CoreV1Api(kube.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    return core.create_namespaced_service_account_token(name, namespace, request).status.token


def who(driver: KubernetesDriver) -> str:
    review = client.AuthenticationV1Api(driver.api).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    return review.status.user_info.username


@pytest.mark.kube
@pytest.mark.django_db
def test_the_driver_uses_the_sealed_token_and_a_replaced_one_at_once(kube, settings):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    token = service_account_token(kube, "sluice-cell-test", "control-plane")
    cell, changed = cell_register(
        slug="eu-west-1-sa", region="eu-west-1", credentials=kube_credentials(kube, token)
    )
    assert changed == ["created"]

    assert drivers.probe_api_server(cell, timeout=5) is True
    driver = KubernetesDriver.for_cell(cell)
    assert who(driver) == "system:serviceaccount:sluice-cell-test:control-plane"
    assert KubernetesDriver.for_cell(cell).api is driver.api  # one client per credentials

    # Replaced: the next driver is the administrator, without a restart.
    cell, changed = cell_register(slug="eu-west-1-sa", credentials=kube_credentials(kube))
    assert changed == ["credentials"]
    assert who(KubernetesDriver.for_cell(Cell.objects.get(pk=cell.pk))) == ADMIN_USER
