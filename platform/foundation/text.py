"""Words for numbers and errors, the same on every page and in every message: counts,
durations, byte sizes and rates in human units, with thousands separators; an exception as one
line."""

from decimal import Decimal

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
MB = 1_000_000
BYTE_UNITS = ["bytes", "KB", "MB", "GB", "TB", "PB"]


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``counted(1, "hour")`` is "1 hour", ``counted(1200, "hour")`` "1,200 hours"."""
    word = noun if number == 1 else plural or f"{noun}s"
    return f"{number:,} {word}"


def error_summary(error: Exception, *, longest: int = 300) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:longest]


def hours_label(hours: int) -> str:
    """An hour count in the largest whole unit: "7 days", "1 year", "36 hours"."""
    if hours % (24 * 365) == 0:
        return counted(hours // (24 * 365), "year")
    if hours % 24 == 0:
        return counted(hours // 24, "day")
    return counted(hours, "hour")


def duration_label(ms: int) -> str:
    """Milliseconds in the largest whole unit: "7 days", "90 minutes", "1,500 ms"."""
    if ms % HOUR_MS == 0:
        return hours_label(ms // HOUR_MS)
    if ms % MINUTE_MS == 0:
        return counted(ms // MINUTE_MS, "minute")
    return f"{ms:,} ms"


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 99.5, 2, 0.25."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def bytes_label(count: int) -> str:
    """A byte count in decimal units to three significant places: "1.5 GB", "999 bytes"."""
    value, unit = Decimal(count), 0
    while abs(value) >= 1000 and unit < len(BYTE_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    if unit == 0:
        return counted(count, "byte")
    shown = value.quantize(Decimal("0.01") if value < 10 else Decimal("0.1"))
    return f"{plain(shown)} {BYTE_UNITS[unit]}"


def rate_label(bytes_per_second: int) -> str:
    """A byte rate in MB/s: "2.5 MB/s"."""
    return f"{plain(Decimal(bytes_per_second) / MB)} MB/s"


def elapsed_label(seconds: float) -> str:
    """A time taken, to the second at most two units: "850 ms", "42 s", "3 min 5 s", "2 h 1 min"."""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,} h {minutes} min" if minutes else f"{hours:,} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
