"""ReplicaSet pod creation: slow-start batches and pods made from the template."""

from __future__ import annotations

from bosun.common.testing import replica_set
from bosun.controllermanager.deployment.util import template_hash, templates_equal
from bosun.controllermanager.replicaset import pod_from_template, slow_start_batches


def test_slow_start_doubles_batches_up_to_the_total() -> None:
    assert slow_start_batches(0) == []
    assert slow_start_batches(1) == [1]
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(slow_start_batches(500)) == 500


def test_pods_carry_the_template_and_a_controller_reference() -> None:
    rs = replica_set("web", replicas=2)
    rs.metadata.uid = "u-1"
    created = pod_from_template(rs, rs.spec.template)
    assert created.metadata.generate_name == "web-"
    assert created.metadata.namespace == "default"
    assert dict(created.metadata.labels) == {"app": "web"}
    (ref,) = created.metadata.owner_references
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == (
        "ReplicaSet",
        "web",
        "u-1",
        True,
        True,
    )


def test_template_hash_ignores_its_own_label_and_changes_with_collisions() -> None:
    template = replica_set("web").spec.template
    labelled = type(template)()
    labelled.CopyFrom(template)
    labelled.metadata.labels["pod-template-hash"] = "x"
    assert template_hash(template) == template_hash(labelled)
    assert templates_equal(template, labelled)
    assert template_hash(template, 1) != template_hash(template)
    assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in template_hash(template))
