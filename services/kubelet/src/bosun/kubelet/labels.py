"""Labels the kubelet puts on every container and volume it creates.

They are the kubelet's only memory: after a restart it finds a pod's sandbox and containers by
`POD_UID`, tells containers apart by `CONTAINER_NAME` and `KIND`, and reads the restart count
back from `ATTEMPT`. `NODE` scopes everything to one kubelet, so several kubelets (tests, or
several nodes) can share one Docker engine without touching each other's containers.
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIX = "io.bosun"
NODE = f"{PREFIX}.node"
POD_UID = f"{PREFIX}.pod.uid"
POD_NAME = f"{PREFIX}.pod.name"
POD_NAMESPACE = f"{PREFIX}.pod.namespace"
CONTAINER_NAME = f"{PREFIX}.container.name"
KIND = f"{PREFIX}.container.kind"
ATTEMPT = f"{PREFIX}.container.attempt"
# The pod's terminationGracePeriodSeconds when the container was created: lets a restarted
# kubelet stop containers of a pod that is already gone with the grace the pod asked for.
GRACE = f"{PREFIX}.pod.grace"


def pod_labels(*, node: str, uid: str, name: str, namespace: str, grace: int) -> dict[str, str]:
    return {
        NODE: node,
        POD_UID: uid,
        POD_NAME: name,
        POD_NAMESPACE: namespace,
        GRACE: str(grace),
    }


def attempt_of(labels: Mapping[str, str]) -> int:
    try:
        return int(labels.get(ATTEMPT, "0"))
    except ValueError:
        return 0
