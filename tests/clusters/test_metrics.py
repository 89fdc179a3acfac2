"""The clusters layer's figures on /metrics against real PostgreSQL rows: the reconcile lag
(how many clusters the data plane has not been seen to converge to, and how long the oldest
change has waited) and the clusters in each state."""

from datetime import timedelta

import pytest

from clusters import metrics
from clusters.models import Cluster, ClusterState, Operation, OperationState
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.metrics import samples, value

pytestmark = pytest.mark.django_db


def asked_for(organization, name: str, *, waiting: timedelta) -> Cluster:
    """A cluster whose creation was asked for ``waiting`` ago and not reconciled yet (the
    reconcile queued on commit does not run inside the test's transaction)."""
    cluster, _operation = make_cluster(organization, name=name)
    Operation.unscoped_all_tenants.filter(cluster=cluster).update(
        created_at=Operation.unscoped_all_tenants.get(cluster=cluster).created_at - waiting
    )
    return Cluster.unscoped_all_tenants.get(pk=cluster.pk)


def test_the_reconcile_lag_counts_the_unconverged_and_ages_the_oldest_change():
    organization = make_org(owner=UserFactory())
    asked_for(organization, "orders", waiting=timedelta(minutes=7))
    asked_for(organization, "payments", waiting=timedelta(minutes=1))
    converged = asked_for(organization, "audit", waiting=timedelta(hours=2))
    # The data plane was seen to reach this one's generation: it lags no more.
    Cluster.unscoped_all_tenants.filter(pk=converged.pk).update(
        observed_generation=converged.generation, state=ClusterState.READY
    )
    Operation.unscoped_all_tenants.filter(cluster=converged).update(state=OperationState.SUCCEEDED)

    found = samples(metrics.cluster_figures())

    assert value(found, "sluice_reconcile_unconverged_clusters") == 2
    # The oldest open change was asked for 7 minutes ago (and a moment, the test's own run).
    assert 420 <= value(found, "sluice_reconcile_lag_seconds") < 430
    assert value(found, "sluice_clusters", state="ready") == 1
    requested = value(found, "sluice_clusters", state="requested")
    assert requested + value(found, "sluice_clusters", state="provisioning") == 2
    assert value(found, "sluice_clusters", state="failed") == 0
    assert ("sluice_clusters", frozenset({("state", "deleted")})) not in found


def test_nothing_waiting_reads_zero_lag():
    found = samples(metrics.cluster_figures())
    assert value(found, "sluice_reconcile_unconverged_clusters") == 0
    assert value(found, "sluice_reconcile_lag_seconds") == 0
