"""A real Celery worker process killed (SIGKILL) in the middle of a push, and another one
finishing it: once the dead worker's lease runs out, the second goes on from the Stripe ids
saved and repeats the step in flight with its Idempotency-Key. Whether Stripe had acted on
that step (the request landed, its answer held at the proxy) or not (the request held before
Stripe), every line ends on Stripe's invoice exactly once, finalized once, to the cent."""

import os
import signal

import pytest
from django.utils import timezone

from billing.tasks import push_to_stripe
from tenants.models import AuditEvent
from tests.factories import UserFactory, make_org
from tests.support.services import wait_for
from tests.support.stripe_standin import API_KEY, Fault, FaultProxy

from .outbox_support import assert_pushed_exactly_once, closed_invoice, plan, row_of

LEASE_SECONDS = 4


def kill(worker) -> None:
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
@pytest.mark.parametrize(
    ("step", "fault", "items_before_the_kill"),
    [
        ("second item", Fault.RESPONSE_HELD, 2),  # Stripe made the item; the worker never knew
        ("finalize", Fault.TIMEOUT, 4),  # every item made and saved; the finalize never landed
    ],
)
def test_a_worker_killed_mid_push_is_finished_by_another_exactly_once(
    start_celery_worker, stripe_standin, step, fault, items_before_the_kill
):
    with FaultProxy(stripe_standin.url, hold_seconds=120) as proxy:
        plan(proxy, step, fault)
        environment = {
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_API_BASE": proxy.url,
            "SLUICE_STRIPE_TIMEOUT_SECONDS": "60",
            "SLUICE_STRIPE_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        first = start_celery_worker(**environment)
        invoice = closed_invoice(make_org(owner=UserFactory(), name="Acme"))  # queues the push

        try:
            wait_for(
                lambda: (
                    any(entry.fault is fault for entry in proxy.log)
                    and len(stripe_standin.invoice_items) == items_before_the_kill
                ),
                timeout=60,
                what="the push held at the proxy",
            )
        except TimeoutError:
            raise AssertionError(first.log()[-6000:]) from None
        kill(first)

        row = row_of(invoice)
        assert (row.state, row.attempts) == ("pending", 0)
        assert row.claim_token  # the dead worker's claim, until its lease runs out
        saved = invoice.lines.model.unscoped_all_tenants.filter(invoice=invoice).exclude(
            stripe_invoice_item_id=""
        )
        assert saved.count() == (1 if step == "second item" else 4)

        second = start_celery_worker(**environment)
        wait_for(
            lambda: row_of(invoice).claimed_until < timezone.now(),
            timeout=LEASE_SECONDS + 5,
            what="the dead worker's lease to run out",
        )
        push_to_stripe.delay()  # what beat sends every 30 s
        try:
            wait_for(lambda: row_of(invoice).state == "done", timeout=60, what="the push")
        except TimeoutError:
            raise AssertionError(second.log()[-6000:]) from None

    assert_pushed_exactly_once(stripe_standin, invoice)
    assert row_of(invoice).attempts == 0  # a worker lost is not a failure of Stripe's
    pushed = AuditEvent.unscoped_all_tenants.filter(
        target_id=invoice.public_id, action="invoice.pushed_to_stripe"
    )
    assert pushed.count() == 1
