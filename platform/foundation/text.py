"""Words for numbers and errors, the same on every page and in every message."""


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``counted(1, "hour")`` is "1 hour", ``counted(1200, "hour")`` "1,200 hours"."""
    word = noun if number == 1 else plural or f"{noun}s"
    return f"{number:,} {word}"


def error_summary(error: Exception, *, longest: int = 300) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:longest]
