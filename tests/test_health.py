"""/healthz says the process is alive; /readyz says the database and the broker answer, and
names the part that does not."""

import json

import pytest
from django.db import connection

from tests.support.processes import clean_environment, database_url, run_python
from tests.support.services import free_port

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ok_against_real_postgres_and_redis(client, settings):
    assert connection.vendor == "postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:")
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def readyz_in_a_fresh_process(**env: str) -> tuple[int, dict]:
    code = (
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "r = Client().get('/readyz')\n"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))\n"
    )
    result = run_python(
        code, env=clean_environment(DJANGO_SETTINGS_MODULE="controlplane.settings.test", **env)
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return found["status"], found["body"]


def test_readyz_names_an_unreachable_broker(settings):
    closed_port = free_port()
    status, body = readyz_in_a_fresh_process(
        DATABASE_URL=_current_database_url(),
        REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
    )
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"] == "ok"
    assert "Error" in body["checks"]["broker"]


def test_readyz_names_an_unreachable_database(settings):
    closed_port = free_port()
    status, body = readyz_in_a_fresh_process(
        DATABASE_URL=f"postgres://sluice:x@127.0.0.1:{closed_port}/sluice",
        REDIS_URL=settings.REDIS_URL,
    )
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["database"].startswith("OperationalError")


def _current_database_url() -> str:
    return database_url(connection.settings_dict)
