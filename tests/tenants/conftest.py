import pytest

from tests.factories import UserFactory, make_org
from tests.support.clients import session_client


@pytest.fixture
def org_with_owner(db):
    owner = UserFactory()
    return make_org(owner=owner, name="Victim Corp"), owner


@pytest.fixture
def owner_client(org_with_owner):
    return session_client(org_with_owner[1])
