"""Words for numbers, the same on every page and in every message."""


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``counted(1, "hour")`` is "1 hour", ``counted(1200, "hour")`` "1,200 hours"."""
    word = noun if number == 1 else plural or f"{noun}s"
    return f"{number:,} {word}"
