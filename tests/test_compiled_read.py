"""foundation.compiled: a hot read compiled once per connection, answering exactly what the
ORM would. The API key read every API request makes is one (tenants.selectors)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from foundation.compiled import CompiledRead
from tenants import selectors
from tenants.models import ApiKey, Membership, Organization
from tenants.roles import Role
from tests.factories import add_member, make_api_key, make_org
from tests.support.clients import key_client
from tests.support.processes import run_on_sqlite

pytestmark = pytest.mark.django_db


def prefix_of(key: str) -> str:
    return key.split("_")[1]


def orm_read(prefix: str) -> ApiKey:
    """The same read through the ORM's whole path (compiled each time), as the reference."""
    return (
        selectors._with_creator_role(ApiKey.unscoped_all_tenants.select_related("organization"))
        .filter(prefix=prefix)
        .get()
    )


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_authentication_read_answers_what_the_orm_does():
    organization = make_org(name="Acme")
    member = add_member(organization, Role.ADMIN)
    api_key, key = make_api_key(organization, Role.ADMIN, creator=member.user)
    Membership.unscoped_all_tenants.filter(pk=member.pk).update(role=Role.DEVELOPER)
    ApiKey.unscoped_all_tenants.filter(pk=api_key.pk).update(
        expires_at=datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        last_used_at=datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
    )
    read = selectors.api_key_for_authentication(prefix=prefix_of(key))
    reference = orm_read(prefix_of(key))
    assert fields(read) == fields(reference)
    assert read.expires_at == datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert fields(read.organization) == fields(reference.organization)
    assert read.organization.name == "Acme"
    # An admin key whose creator is now a developer acts as a developer.
    assert (read.creator_role, read.effective_role) == (Role.DEVELOPER, Role.DEVELOPER)
    assert selectors.api_key_for_authentication(prefix="nosuchprefix1234") is None


def test_the_read_follows_the_rows_at_once():
    """Compiled once, but executed every time: a change to the key or its creator's membership
    shows on the very next request."""
    organization = make_org(name="Acme")
    member = add_member(organization, Role.ADMIN)
    _, key = make_api_key(organization, Role.DEVELOPER, creator=member.user)
    http = key_client(key)
    url = f"/api/v1/orgs/{organization.public_id}/clusters/"
    assert http.get(url).status_code == 200
    member.delete()
    answer = http.get(url)
    assert answer.status_code == 401
    assert "no longer a member" in answer.json()["detail"]


def test_a_second_read_compiles_nothing(settings):
    builds = []

    def build(name: str):
        builds.append(name)
        return Organization.objects.filter(name=name).values_list("public_id")

    read = CompiledRead(build)
    first, second = make_org(name="First"), make_org(name="Second")
    assert read.rows("First") == [(first.public_id,)]
    with CaptureQueriesContext(connection) as queries:
        assert read.rows("Second") == [(second.public_id,)]
        assert read.rows("Nobody") == []
    assert len(builds) == 1
    assert len(queries) == 2
    # The value is bound as a parameter, never spliced into the SQL.
    assert read.rows("First' OR '1'='1") == []


@pytest.mark.parametrize("uses", [0, 2])
def test_a_read_must_use_its_parameter_exactly_once(uses):
    from django.db.models import Q

    def build(name: str):
        condition = Q()
        for _ in range(uses):
            condition |= Q(name=name)
        return Organization.objects.filter(condition).values_list("pk")

    with pytest.raises(ValueError, match=f"found {uses}"):
        CompiledRead(build).rows("Acme")


SQLITE_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from datetime import UTC, datetime
from tenants import selectors
from tenants.models import ApiKey
from tenants.roles import Role
from tests.factories import make_api_key, make_org
organization = make_org(name="Acme")
api_key, key = make_api_key(organization, Role.DEVELOPER)
ApiKey.unscoped_all_tenants.filter(pk=api_key.pk).update(
    expires_at=datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
)
read = selectors.api_key_for_authentication(prefix=key.split("_")[1])
print(json.dumps({
    "expires_at": read.expires_at.isoformat(),
    "created_at_aware": read.created_at.tzinfo is not None,
    "organization": read.organization.name,
    "closed": read.organization.is_closed,
    "effective_role": read.effective_role,
}))
"""


@pytest.mark.django_db(databases=[])
def test_the_read_converts_sqlite_values_as_the_orm_does(tmp_path):
    """``make run`` runs on SQLite, which returns datetimes as text: the ORM's converters run."""
    answer = run_on_sqlite(SQLITE_SCRIPT, tmp_path)
    assert answer == {
        "expires_at": "2031-05-06T07:08:09+00:00",
        "created_at_aware": True,
        "organization": "Acme",
        "closed": False,
        "effective_role": "developer",
    }
