"""`make test`: start throwaway PostgreSQL and Redis, run pytest against them, stop them.

    python -m tests.support.runner [pytest arguments]

The servers are stopped whatever happens: tests failing, Ctrl-C, or SIGTERM. pytest's exit
code 5 (no tests collected) is a failure here, never a success.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

from tests.support.services import PostgresServer, RedisServer

NO_TESTS_COLLECTED = 5


def _terminate_on_sigterm() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str]) -> int:
    _terminate_on_sigterm()
    started = time.monotonic()
    with ExitStack() as stack:
        postgres = stack.enter_context(PostgresServer())
        redis = stack.enter_context(RedisServer())
        print(
            f"test services: PostgreSQL on 127.0.0.1:{postgres.port}, "
            f"Redis on 127.0.0.1:{redis.port} ({time.monotonic() - started:.1f}s to start)",
            flush=True,
        )
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="controlplane.settings.test",
            DATABASE_URL=postgres.url,
            REDIS_URL=redis.url,
        )
        try:
            code = subprocess.call([sys.executable, "-m", "pytest", *argv], env=env)
        except KeyboardInterrupt:
            print("interrupted: stopping the test services", file=sys.stderr)
            return 130
    if code == NO_TESTS_COLLECTED:
        print("pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
