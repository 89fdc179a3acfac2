"""Liveness by file: a long-running process touches its heartbeat file while its loop turns,
and the probe says whether the file is fresh.

The probe is what Kubernetes' exec liveness probes of the worker and beat pods run, every few
seconds in every pod: ``python -m foundation.heartbeat FILE --max-age SECONDS`` exits 0 when
FILE was touched less than SECONDS ago and 1 otherwise (missing, or stale). It imports only the
standard library, so it starts neither Django nor Celery.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def touch(path: str | os.PathLike) -> None:
    """Sets the file's modification time to now, making it if it does not exist."""
    Path(path).touch()


def age_seconds(path: str | os.PathLike, *, now: float | None = None) -> float | None:
    """Seconds since the file was last touched; None when there is no file."""
    try:
        modified = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - modified


def is_fresh(path: str | os.PathLike, max_age_seconds: float) -> bool:
    age = age_seconds(path)
    return age is not None and age <= max_age_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m foundation.heartbeat",
        description="Exit 0 when the heartbeat file was touched within --max-age seconds.",
    )
    parser.add_argument("file", help="the heartbeat file the process touches")
    parser.add_argument("--max-age", type=float, required=True, help="seconds")
    arguments = parser.parse_args(argv)
    age = age_seconds(arguments.file)
    if age is None:
        print(f"no heartbeat: {arguments.file} does not exist", file=sys.stderr)
        return 1
    if age > arguments.max_age:
        print(
            f"stale heartbeat: {arguments.file} last touched {age:.0f}s ago"
            f" (at most {arguments.max_age:g}s allowed)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
