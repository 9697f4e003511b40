"""ImageLocality: prefer nodes that already have the pod's container images.

Kubernetes' formula: for each container image the node has, its size scaled by the fraction of
nodes that have it (an image on every node says little about this one); the sum is clamped to
[23 MB, 1000 MB · containers] and mapped linearly onto 0..100. Image names without a tag or
digest are looked up as `:latest`.
"""

from __future__ import annotations

import numpy as np

from bosun.scheduler.cache import FloatArray, IntArray, SchedulerCache
from bosun.scheduler.framework import MAX_NODE_SCORE, CycleState
from bosun.scheduler.podinfo import PodInfo

NAME = "ImageLocality"
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def normalized_image_name(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        return f"{name}:latest"
    return name


class ImageLocality:
    name = NAME

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        if not cache.image_slots:  # no node reports images: nothing to prefer
            return np.zeros(slots.size)
        containers = [*pod.pod.spec.init_containers, *pod.pod.spec.containers]
        total_nodes = max(cache.node_count(), 1)
        sums = np.zeros(cache.capacity)
        for container in containers:
            holders = cache.image_slots.get(normalized_image_name(container.image)) or (
                cache.image_slots.get(container.image)
            )
            if not holders:
                continue
            spread = len(holders) / total_nodes
            where = np.fromiter(holders.keys(), dtype=np.intp, count=len(holders))
            sizes = np.fromiter(holders.values(), dtype=np.float64, count=len(holders))
            sums[where] += sizes * spread
        maximum = MAX_CONTAINER_THRESHOLD * max(len(containers), 1)
        clamped = np.clip(sums[slots], MIN_THRESHOLD, maximum)
        scores: FloatArray = np.floor(
            MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (maximum - MIN_THRESHOLD)
        )
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        return scores
