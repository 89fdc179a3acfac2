"""Recompute the ledger over a month (``--month 2026-11``) or a range (``--since``/``--until``,
ISO instants, UTC when no offset is given) in parallel on the metering workers, for every cell
or those named (``--cell``, repeatable); ``--wait`` waits for each cell's outcome and prints it.
Running it again changes nothing (billing.recompute)."""

from __future__ import annotations

from datetime import UTC, datetime

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.core.management.base import BaseCommand, CommandError

from billing.recompute import recompute_start
from clusters.models import Cell


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def month(text: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"--month is YYYY-MM, not {text!r}") from None
    following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start, following


class Command(BaseCommand):
    help = (
        "Recompute the usage ledger of a month (--month YYYY-MM) or a range (--since, --until) "
        "per cell and chunk of hours on the metering workers; each cell's watermark moves to "
        "the range's end only when all its chunks succeeded."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", help="YYYY-MM, UTC")
        parser.add_argument("--since", type=instant, help="ISO instant, from its hour")
        parser.add_argument("--until", type=instant, help="ISO instant (default: now)")
        parser.add_argument(
            "--cell", action="append", dest="cells", help="a cell's slug (default: every cell)"
        )
        parser.add_argument("--chunk-hours", type=int, help="hours per task")
        parser.add_argument(
            "--wait", type=float, metavar="SECONDS", help="wait for the outcome and print it"
        )

    def handle(self, *args, **options) -> None:
        if options["month"] and (options["since"] or options["until"]):
            raise CommandError("Give --month or --since/--until, not both.")
        if options["month"]:
            start, end = month(options["month"])
        elif options["since"]:
            start, end = options["since"], options["until"] or datetime.now(UTC)
        else:
            raise CommandError("Give --month or --since.")
        cells = list(Cell.objects.order_by("slug"))
        if options["cells"]:
            unknown = set(options["cells"]) - {cell.slug for cell in cells}
            if unknown:
                raise CommandError(f"No such cell: {', '.join(sorted(unknown))}.")
            cells = [cell for cell in cells if cell.slug in options["cells"]]
        if options["chunk_hours"] is not None and options["chunk_hours"] < 1:
            raise CommandError("--chunk-hours is at least 1.")
        results = recompute_start(cells, start=start, end=end, chunk_hours=options["chunk_hours"])
        self.stdout.write(
            f"Recomputing {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC on "
            f"{len(results)} cell(s)."
        )
        if options["wait"] is None:
            return
        failed = 0
        for slug, result in results.items():
            try:
                outcome = result.get(timeout=options["wait"], propagate=True)
            except CeleryTimeoutError:
                raise CommandError(f"{slug}: no outcome after {options['wait']:g} s.") from None
            failed += bool(outcome["failed"])
            self.stdout.write(
                f"{slug}: {outcome['chunks']} chunks, {outcome['written']} rows written, "
                f"{len(outcome['failed'])} failed; watermark {outcome['watermark_before']} -> "
                f"{outcome['watermark']}"
            )
            for chunk in outcome["failed"]:
                self.stdout.write(f"  failed {chunk['start']} to {chunk['end']}: {chunk['error']}")
        if failed:
            raise CommandError(f"{failed} cell(s) had failed chunks: run the recompute again.")
