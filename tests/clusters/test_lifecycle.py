"""The cluster lifecycle: its transitions table (and the module docstring's copy of it), the
functions that refuse what the table does not allow, and the rule that no other module writes
a cluster's state or generations."""

import ast
import pathlib

import pytest
from django.db import transaction

from clusters import lifecycle
from clusters.lifecycle import TRANSITIONS, Event, IllegalTransition
from clusters.models import Cluster, ClusterState, Operation
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

ACTOR = Actor(system="tests")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


# The table -------------------------------------------------------------------------------------


def test_every_state_has_an_entry_and_every_target_is_a_state():
    assert set(TRANSITIONS) == set(ClusterState)
    for state, moves in TRANSITIONS.items():
        for event, targets in moves.items():
            assert isinstance(event, Event), (state, event)
            assert targets, (state, event)
            assert targets <= set(ClusterState), (state, event)


def test_nothing_leaves_deleted_and_only_a_deletion_in_progress_reaches_it():
    assert TRANSITIONS[ClusterState.DELETED] == {}
    reaching = {
        (state, event)
        for state, moves in TRANSITIONS.items()
        for event, targets in moves.items()
        if ClusterState.DELETED in targets
    }
    assert reaching == {(ClusterState.DELETING, Event.DELETED)}
    # Once deleting, a cluster stays deleting until its deletion is done.
    for event, targets in TRANSITIONS[ClusterState.DELETING].items():
        assert targets <= {ClusterState.DELETING, ClusterState.DELETED}, event


def test_the_docstring_table_is_the_table():
    letters = {
        "R": ClusterState.READY,
        "P": ClusterState.PROVISIONING,
        "U": ClusterState.UPDATING,
        "F": ClusterState.FAILED,
        "T": ClusterState.THROTTLED,
        "D": ClusterState.DELETING,
        "X": ClusterState.DELETED,
    }
    columns = [
        Event.CHANGE,
        Event.RESHAPE,
        Event.DELETION,
        Event.RETRY,
        Event.READY,
        Event.PENDING,
        Event.FAILURE,
        Event.DELETED,
    ]
    documented = {}
    for line in lifecycle.__doc__.splitlines():
        words = line.split()
        if len(words) == len(columns) + 1 and words[0] in ClusterState.values:
            state = ClusterState(words[0])
            documented[state] = {
                event: frozenset({state} if cell == "=" else map(letters.get, cell.split("|")))
                for event, cell in zip(columns, (w.rstrip("*") for w in words[1:]), strict=True)
                if cell != "-"
            }
    assert documented == TRANSITIONS


# The functions refuse what the table does not allow --------------------------------------------


def put(cluster: Cluster, state: ClusterState) -> Cluster:
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(state=state)
    return Cluster.unscoped_all_tenants.select_related("organization").get(pk=cluster.pk)


@pytest.mark.django_db
def test_the_functions_refuse_an_illegal_transition_and_write_nothing():
    organization = make_org(owner=UserFactory(), name="Lifecycle")
    created, _ = make_cluster(organization)
    with tenant_scope(organization):
        operations = Operation.objects.count()
        ready = put(created, ClusterState.READY)
        with pytest.raises(IllegalTransition):
            lifecycle.request_retry(ready, actor=ACTOR)  # only a failed cluster is retried
        with pytest.raises(IllegalTransition):
            lifecycle.open_cluster(ready, actor=ACTOR)  # not a new cluster
        deleted = put(created, ClusterState.DELETED)
        for refused in (
            lambda: lifecycle.request_change(deleted, kind="topic.create", actor=ACTOR),
            lambda: lifecycle.request_reshape(deleted, actor=ACTOR),
            lambda: lifecycle.request_deletion(deleted, actor=ACTOR),
            lambda: lifecycle.record_pending(deleted),
            lambda: lifecycle.record_ready(
                deleted, generation=1, bootstrap_servers="", bootstrap_tls=True
            ),
            lambda: lifecycle.record_failure(deleted, generation=1, reason="x", message="x"),
            lambda: lifecycle.record_deleted(deleted, generation=1, actor=ACTOR),
        ):
            with pytest.raises(IllegalTransition):
                refused()
        row = Cluster.unscoped_all_tenants.get(pk=created.pk)
        assert (row.state, row.generation, row.observed_generation) == ("deleted", 1, 0)
        assert Operation.objects.count() == operations


@pytest.mark.django_db
def test_a_run_that_applied_before_a_deletion_was_requested_leaves_the_cluster_deleting():
    organization = make_org(owner=UserFactory(), name="Deleting")
    created, _ = make_cluster(organization)
    with tenant_scope(organization), transaction.atomic():
        cluster = Cluster.objects.select_related("organization").get(pk=created.pk)
        lifecycle.request_deletion(cluster, actor=ACTOR)
        lifecycle.record_ready(
            cluster, generation=1, bootstrap_servers="b:9092", bootstrap_tls=True
        )
        assert (cluster.state, cluster.observed_generation) == ("deleting", 1)
        lifecycle.record_failure(cluster, generation=1, reason="Broken", message="broken")
        lifecycle.record_pending(cluster)
        assert Cluster.objects.get(pk=cluster.pk).state == "deleting"
        lifecycle.record_deleted(cluster, generation=2, actor=ACTOR)
        assert Cluster.objects.get(pk=cluster.pk).state == "deleted"


# Nobody else writes a cluster's state or generations -------------------------------------------

GENERATIONS = {"generation", "observed_generation"}
WRITES = {"update", "create", "get_or_create", "update_or_create", "bulk_create"}


def _names_another_state(value: ast.expr) -> bool:
    """``Invitation.State.REVOKED``, ``OperationState.FAILED``: not a cluster's state."""
    text = ast.unparse(value)
    return "State" in text and "ClusterState" not in text


def _writes_cluster_state(target: ast.expr, value: ast.expr | None) -> bool:
    if not isinstance(target, ast.Attribute):
        return any(_writes_cluster_state(t, value) for t in getattr(target, "elts", []))
    if target.attr in GENERATIONS:
        return True
    if target.attr != "state" or _another_models_state(target.value):
        return False
    return not (value is not None and _names_another_state(value))


# Other models with a state of their own, by the names their instances go by.
OTHER_STATEFUL = ("invitation", "operation", "invoice")


def _another_models_state(receiver: ast.expr) -> bool:
    """``invoice.state = state``: the receiver names another model with a state."""
    name = ast.unparse(receiver).rsplit(".", 1)[-1].lower()
    return any(other in name for other in OTHER_STATEFUL)


def cluster_state_writes(source: str) -> list[int]:
    """Lines of ``source`` that assign, update or setattr a Cluster's state or generations."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            hit = any(_writes_cluster_state(t, node.value) for t in node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            hit = _writes_cluster_state(node.target, node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            hit = node.func.attr in WRITES and any(
                k.arg in GENERATIONS or (k.arg == "state" and not _names_another_state(k.value))
                for k in node.keywords
            )
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            hit = (
                node.func.id == "setattr"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in GENERATIONS | {"state"}
            )
        else:
            continue
        if hit:
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_a_state_or_generation_written_outside_the_lifecycle():
    written = """
cluster.state = ClusterState.READY
current.state = state
cluster.generation += 1
cluster.observed_generation = 3
Cluster.objects.filter(pk=1).update(state=ClusterState.FAILED)
rows.update(generation=F("generation") + 1)
setattr(cluster, "state", "ready")
"""
    assert cluster_state_writes(written) == [2, 3, 4, 5, 6, 7, 8]
    elsewhere = """
invitation.state = Invitation.State.REVOKED
Invitation.objects.filter(pk=1).update(state=Invitation.State.EXPIRED)
Operation.objects.filter(cluster=c).update(state=OperationState.SUCCEEDED)
Operation.objects.create(cluster=c, target_generation=cluster.generation)
spec = ClusterSpec(generation=cluster.generation)
Cluster.objects.filter(state=ClusterState.FAILED)
invoice.state = state
self.invoice.state = InvoiceState.PAID
"""
    assert cluster_state_writes(elsewhere) == []


def test_only_the_lifecycle_writes_a_clusters_state_or_generations():
    lifecycle_module = REPO_ROOT / "clusters" / "lifecycle.py"
    assert cluster_state_writes(lifecycle_module.read_text())  # the scan sees its writes
    offenders = []
    for app in ("clusters", "billing", "tenants", "platform"):
        for path in sorted((REPO_ROOT / app).rglob("*.py")):
            if path == lifecycle_module or "migrations" in path.parts:
                continue
            for line in cluster_state_writes(path.read_text()):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{line}")
    assert offenders == [], "write a cluster's state through clusters.lifecycle"
