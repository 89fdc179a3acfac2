"""Waiting, briefly, for Strimzi's topic and user operators to report on what a run just
applied: read from a watch of each kind (events pushed by the API server from the apply's own
resourceVersion) rather than by polling each object, so a create is usually ready at the end of
its first run instead of a retry later.

Only KafkaTopic and KafkaUser are waited for: their operators answer in moments, while a Kafka
cluster takes minutes (its run ends pending and looks again later, as before). The wait is
bounded, for each kind, by SLUICE_RECONCILE_STATUS_WAIT_SECONDS; what has not been reported by
then is read as it stands, and the run ends pending. Watching needs the ``watch`` verb on both
kinds (deploy/dataplane/)."""

from __future__ import annotations

import time
from collections import defaultdict

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from .. import naming

QUICK_KINDS = ("KafkaTopic", "KafkaUser")

# (kind, namespace, name) -> the object as the API server last showed it.
Answers = dict[tuple[str, str, str], dict]


def reported(found: dict) -> bool:
    """Whether the operator has reported on the object's current generation."""
    status = found.get("status") or {}
    return status.get("observedGeneration") == (found.get("metadata") or {}).get("generation")


def await_reports(dynamic, answers: Answers, *, budget: float, connect_timeout: float) -> None:
    """Update ``answers`` in place from watch events until every quick object in them has been
    reported on, or ``budget`` seconds have passed for its kind."""
    waiting: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (kind, namespace, name), found in answers.items():
        if kind in QUICK_KINDS and not reported(found):
            waiting[(kind, namespace)].add(name)
    for (kind, namespace), names in waiting.items():
        applied = [answers[(kind, namespace, name)] for name in names]
        deadline = time.monotonic() + budget
        resource = dynamic.resources.get(api_version=naming.KAFKA_API_VERSION, kind=kind)
        watcher = watch.Watch()
        try:
            for event in watcher.stream(
                resource.get,
                namespace=namespace,
                label_selector=_cluster_selector(applied),
                resource_version=_earliest_version(applied),
                serialize=False,  # the events are read as they come, not the body at its end
                timeout_seconds=max(1, int(budget + 1)),
                # Events arrive as they happen; none within the budget ends the wait.
                _request_timeout=(connect_timeout, budget),
            ):
                found = event["object"]
                name = (found.get("metadata") or {}).get("name", "")
                if name in names and event["type"] in ("ADDED", "MODIFIED"):
                    answers[(kind, namespace, name)] = found
                    if reported(found):
                        names.discard(name)
                if not names or time.monotonic() >= deadline:
                    break
        except (ReadTimeoutError, ProtocolError):
            pass  # nothing more within the budget: what is not reported yet waits for a retry
        except ApiException as error:
            if error.status != 410:  # 410: history compacted already; the run looks again
                raise
        finally:
            watcher.stop()


def _cluster_selector(objects: list[dict]) -> str | None:
    """Only the cluster's own objects: a shared Kafka's namespace holds every tenant's."""
    labels = (objects[0].get("metadata") or {}).get("labels") or {}
    value = labels.get(naming.CLUSTER_LABEL)
    return f"{naming.CLUSTER_LABEL}={value}" if value else None


def _earliest_version(objects) -> str:
    """The resourceVersion to watch from: the earliest of the applied objects' (resource
    versions are etcd revisions, compared as numbers), so no later change is missed."""
    versions = [(o.get("metadata") or {}).get("resourceVersion", "") for o in objects]
    numeric = [int(v) for v in versions if v.isdigit()]
    return str(min(numeric)) if numeric else ""
