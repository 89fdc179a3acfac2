"""Amounts of money as tenants write them: decimal US dollars in a string, parsed into
integer micro-dollars by one set of rules for every form and API field (budgets, spend caps)."""

import re

from foundation.errors import InvalidInput

from .invoices import dollars

MICROS_PER_DOLLAR = 1_000_000
MAX_MICROS = 10**9 * MICROS_PER_DOLLAR  # a billion dollars: more is a typing error
_DOLLARS = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


class InvalidAmount(InvalidInput):
    """An amount of money that is not a positive decimal string of US dollars within bounds;
    ``reason`` says which rule it breaks."""

    code = "invalid_amount"
    title = "The amount is not valid"


def dollars_exact(micros: int) -> str:
    """Micro-dollars written back as a dollar amount is typed: two decimals at least, more only
    where the amount has them (``"250.00"``, ``"1.234"``), never rounded."""
    whole, fraction = dollars(micros, places=6).split(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def micros_from_dollars(
    text, *, field: str, allow_zero: bool = False, maximum_micros: int = MAX_MICROS
) -> int:
    """``"250.5"`` as 250,500,000 micro-dollars. ASCII digits, a point, at most six decimals
    (a micro-dollar), more than 0 (or 0 too, ``allow_zero``) and at most ``maximum_micros`` (a
    billion dollars); ``InvalidAmount`` with a
    ``reason`` (``not_a_string``, ``not_a_decimal``, ``negative``, ``too_many_decimals``,
    ``zero``, ``too_large``) otherwise."""

    def refuse(reason: str, detail: str) -> InvalidAmount:
        return InvalidAmount(detail, field=field, reason=reason)

    if not isinstance(text, str):
        raise refuse("not_a_string", 'Write the amount as a string of US dollars, e.g. "250.00"')
    match = _DOLLARS.fullmatch(text)
    if match is None:
        raise refuse("not_a_decimal", 'Not a decimal amount of US dollars, e.g. "250.00"')
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    if sign:
        raise refuse("negative", "The amount cannot be negative")
    if len(fraction) > 6:
        raise refuse("too_many_decimals", "At most six decimal places (a micro-dollar)")
    maximum = f"At most {dollars(maximum_micros // MICROS_PER_DOLLAR, places=0)} dollars"
    if len(whole.lstrip("0")) > 10:
        raise refuse("too_large", maximum)
    micros = int(whole) * MICROS_PER_DOLLAR + int(fraction.ljust(6, "0"))
    if micros == 0 and not allow_zero:
        raise refuse("zero", "The amount must be more than 0")
    if micros > maximum_micros:
        raise refuse("too_large", maximum)
    return micros
