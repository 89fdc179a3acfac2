"""The OpenAPI description is checked in, valid, and current."""

import subprocess
import sys

import yaml

from tests.support.processes import REPO_ROOT, clean_environment

CHECKED_IN = REPO_ROOT / "platform" / "controlplane" / "api" / "openapi.yaml"


def test_the_checked_in_openapi_description_is_current(tmp_path):
    generated = tmp_path / "openapi.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(generated),
        ],
        cwd=REPO_ROOT,
        env=clean_environment(SLUICE_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert generated.read_text() == CHECKED_IN.read_text(), (
        "platform/controlplane/api/openapi.yaml is stale: run `make openapi` and commit it"
    )


def test_the_description_documents_errors_auth_and_every_resource():
    schema = yaml.safe_load(CHECKED_IN.read_text())
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An organization's API key: `Authorization: Bearer slk_…`",
    }
    members = schema["paths"]["/api/v1/orgs/{org}/members/"]["get"]["responses"]
    assert members["404"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    create_key = schema["paths"]["/api/v1/orgs/{org}/api-keys/"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in create_key["parameters"]]
    paths = set(schema["paths"])
    for resource in ("members", "invitations", "api-keys", "audit-events"):
        assert f"/api/v1/orgs/{{org}}/{resource}/" in paths
        assert f"/api/v1/orgs/{{org}}/{resource}/{{id}}/" in paths


def test_the_description_states_the_rules_the_server_enforces():
    schema = yaml.safe_load(CHECKED_IN.read_text())
    components = schema["components"]["schemas"]
    codes = components["Problem"]["properties"]["code"]["enum"]
    assert {"validation", "not_found", "method_not_allowed", "capacity_unavailable"} <= set(codes)
    assert "error" not in codes  # every problem names what went wrong
    create = components["ClusterCreateRequest"]["properties"]
    assert create["type"]["allOf"] == [{"$ref": "#/components/schemas/ClusterTypeSlugEnum"}]
    assert create["region"]["allOf"] == [{"$ref": "#/components/schemas/RegionEnum"}]
    topic = components["TopicCreateRequest"]["properties"]
    assert topic["retention_ms"]["minimum"] == 60_000
    assert "pattern" in topic["name"]
    assert components["OrganizationInputRequest"]["required"] == ["name"]
    assert components["ApiKey"]["properties"]["created_by"]["nullable"] is True
    clusters = schema["paths"]["/api/v1/orgs/{org}/clusters/"]["post"]["responses"]["202"]
    assert clusters["links"]["v1_orgs_clusters_retrieve"]["parameters"]["id"] == (
        "$response.body#/cluster/id"
    )
