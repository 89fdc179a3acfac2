"""pytest: the harness in tests/support/ points DATABASE_URL and REDIS_URL at throwaway
servers it started."""

from .base import *
from .environment import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend"
)
EMAIL_FILE_PATH = env.str("DJANGO_EMAIL_FILE_PATH", default="")
# Tasks run in the calling process, so a test sees their effects at once. Tests marked for a
# real worker switch this off (tests/conftest.py) and go through Redis to a `celery worker`.
CELERY_TASK_ALWAYS_EAGER = env.bool("SLUICE_TEST_EAGER_TASKS", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
# The benchmarks serve a URLconf with a baseline view beside the real ones (tests/bench/).
ROOT_URLCONF = env.str("SLUICE_ROOT_URLCONF", default=ROOT_URLCONF)
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
