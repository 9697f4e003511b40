"""Label and field selectors: grammar, matching, rendering, and the fields each kind exposes."""

from __future__ import annotations

import pytest

from bosun.api.v1 import core_pb2, meta_pb2
from bosun.common import testing
from bosun.common.selectors import (
    SUPPORTED_FIELDS,
    FieldSelector,
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    qualified_name_errors,
    validate_field_selector,
)

WEB = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("missing!=x", WEB, True),
        ("tier in (front,back)", WEB, True),
        ("tier in (back)", WEB, False),
        ("missing in (a)", WEB, False),
        ("tier notin (back)", WEB, True),
        ("tier notin (front)", WEB, False),
        ("missing notin (a)", WEB, True),
        ("tier", WEB, True),
        ("missing", WEB, False),
        ("!missing", WEB, True),
        ("!tier", WEB, False),
        ("app=web,!legacy", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("  app = web ,  tier  in  ( front , back )  ", WEB, True),
        ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
        ("empty=", {"empty": ""}, True),
        ("empty=", {}, False),
        ("", WEB, True),
    ],
)
def test_label_selector_matches_as_kubernetes_does(
    text: str, labels: dict[str, str], expected: bool
) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("app==web", "app=web"),
        ("tier in (b, a, a)", "tier in (a,b)"),
        ("z,!y,a!=1", "a!=1,!y,z"),
        ("x notin ( q )", "x notin (q)"),
        ("empty=", "empty="),
        ("", ""),
    ],
)
def test_label_selector_renders_canonically(text: str, canonical: str) -> None:
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    assert parse_label_selector(str(selector)) == selector


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a in (b", "expected ',' or ')'"),
        ("a in b", "expected '(' opening a set of values"),
        ("a in ()", "at least one value"),
        ("a b", "expected one of '=', '==', '!=', 'in', 'notin'"),
        ("a=b c", "expected ',' or end of input"),
        ("a=(b)", "expected a label value"),
        (",a", "expected a label key"),
        ("a,", "expected a label key"),
        ("!a=b", "after '!a'"),
        ("bad key!=v", "expected one of"),
        ("-bad=v", "invalid label key '-bad'"),
        ("a=" + "v" * 64, "must be no more than 63 characters"),
        ("a=bad value", "expected ',' or end of input"),
    ],
)
def test_malformed_label_selector_quotes_the_text_and_says_what_was_expected(
    text: str, expected: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    assert expected in str(caught.value)
    assert repr(text) in str(caught.value)


def test_selector_error_is_a_value_error() -> None:
    assert issubclass(SelectorError, ValueError)


def test_empty_label_selector_is_empty_and_a_requirement_is_not() -> None:
    assert parse_label_selector("").is_empty
    assert not parse_label_selector("a").is_empty


def test_requirements_are_sorted_by_key() -> None:
    selector = parse_label_selector("b=1,a=2")
    assert selector.requirements == (
        Requirement("a", Operator.EQUALS, ("2",)),
        Requirement("b", Operator.EQUALS, ("1",)),
    )


def test_label_selector_from_labels_requires_every_label() -> None:
    selector = LabelSelector.from_labels({"app": "web", "tier": "front"})
    assert str(selector) == "app=web,tier=front"
    assert selector.matches(WEB)
    assert not selector.matches({"app": "web"})


def _proto(
    match_labels: dict[str, str] | None = None,
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
) -> meta_pb2.LabelSelector:
    selector = meta_pb2.LabelSelector(match_labels=match_labels or {})
    for key, operator, values in expressions:
        selector.match_expressions.add(key=key, operator=operator, values=values)
    return selector


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (_proto(), {}, True),
        (_proto(), WEB, True),
        (_proto({"app": "web"}), WEB, True),
        (_proto({"app": "db"}), WEB, False),
        (_proto(expressions=(("tier", "In", ("front", "back")),)), WEB, True),
        (_proto(expressions=(("tier", "NotIn", ("front",)),)), WEB, False),
        (_proto(expressions=(("tier", "Exists", ()),)), WEB, True),
        (_proto(expressions=(("tier", "DoesNotExist", ()),)), WEB, False),
        (_proto({"app": "web"}, (("legacy", "DoesNotExist", ()),)), WEB, True),
    ],
)
def test_label_selector_from_proto_matches(
    selector: meta_pb2.LabelSelector, labels: dict[str, str], expected: bool
) -> None:
    assert LabelSelector.from_proto(selector).matches(labels) is expected


def test_label_selector_from_proto_renders_match_labels_as_equality() -> None:
    selector = _proto({"app": "web"}, (("tier", "In", ("b", "a")),))
    assert str(LabelSelector.from_proto(selector)) == "app=web,tier in (a,b)"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (_proto(expressions=(("a", "Equals", ("b",)),)), "invalid operator 'Equals'"),
        (_proto(expressions=(("a", "In", ()),)), "needs at least one value"),
        (_proto(expressions=(("a", "Exists", ("b",)),)), "takes no values"),
        (_proto({"bad key": "v"}), "invalid label key 'bad key'"),
    ],
)
def test_invalid_proto_selector_raises(selector: meta_pb2.LabelSelector, expected: str) -> None:
    with pytest.raises(SelectorError, match=expected):
        LabelSelector.from_proto(selector)


# ---------------------------------------------------------------------------- field selectors

POD_FIELDS = {"metadata.name": "web", "spec.nodeName": "", "status.phase": "Pending"}


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("metadata.name=web", POD_FIELDS, True),
        ("metadata.name==web", POD_FIELDS, True),
        ("metadata.name!=web", POD_FIELDS, False),
        ("metadata.name=db", POD_FIELDS, False),
        ("spec.nodeName=", POD_FIELDS, True),
        ("spec.nodeName!=", POD_FIELDS, False),
        ("status.phase=Pending,metadata.name!=a", POD_FIELDS, True),
        (" status.phase = Pending ", POD_FIELDS, True),
        ("absent=", POD_FIELDS, True),
        ("", POD_FIELDS, True),
        (r"metadata.name=a\,b", {"metadata.name": "a,b"}, True),
        (r"metadata.name=a\=b", {"metadata.name": "a=b"}, True),
    ],
)
def test_field_selector_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


def test_field_selector_reports_the_fields_it_uses() -> None:
    selector = parse_field_selector("spec.nodeName=a,status.phase!=Failed,spec.nodeName!=b")
    assert selector.fields == frozenset({"spec.nodeName", "status.phase"})


def test_field_selector_renders_back_with_escapes() -> None:
    text = r"metadata.name!=a\,b,spec.nodeName="
    assert str(parse_field_selector(text)) == text


def test_empty_field_selector_is_empty() -> None:
    assert parse_field_selector("").is_empty
    assert FieldSelector().matches({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name", "is not of the form 'field=value'"),
        ("metadata.name=a,", "term '' is not of the form"),
        ("=a", "'' is not a field name"),
        ("metadata..name=a", "is not a field name"),
        ("a=b=c", "unescaped '='"),
        (r"a=b\q", "invalid escape"),
    ],
)
def test_malformed_field_selector_says_what_was_expected(text: str, expected: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse field selector") as caught:
        parse_field_selector(text)
    assert expected in str(caught.value)


# ---------------------------------------------------------------------------- object fields


def test_pod_fields() -> None:
    pod = testing.pod("web", namespace="ns", node_name="node-1")
    pod.spec.scheduler_name = "default-scheduler"
    pod.spec.service_account_name = "sa"
    pod.status.phase = "Running"
    pod.status.pod_ip = "10.0.0.5"
    pod.status.nominated_node_name = "node-2"
    fields = object_fields("Pod", pod)
    assert fields["metadata.name"] == "web"
    assert fields["metadata.namespace"] == "ns"
    assert fields["spec.nodeName"] == "node-1"
    assert fields["spec.schedulerName"] == "default-scheduler"
    assert fields["spec.serviceAccountName"] == "sa"
    assert fields["status.phase"] == "Running"
    assert fields["status.podIP"] == "10.0.0.5"
    assert fields["status.nominatedNodeName"] == "node-2"


@pytest.mark.parametrize(("unschedulable", "expected"), [(True, "true"), (False, "false")])
def test_node_unschedulable_field_is_a_boolean_string(unschedulable: bool, expected: str) -> None:
    node = testing.node("node-1")
    node.spec.unschedulable = unschedulable
    assert object_fields("Node", node)["spec.unschedulable"] == expected


def test_event_fields() -> None:
    event = core_pb2.Event(reason="Scheduled", type="Normal")
    event.metadata.name, event.metadata.namespace = "web.1", "default"
    event.involved_object.kind = "Pod"
    event.involved_object.namespace = "default"
    event.involved_object.name = "web"
    event.involved_object.uid = "u-1"
    event.source.component = "scheduler"
    fields = object_fields("Event", event)
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["involvedObject.namespace"] == "default"
    assert fields["involvedObject.name"] == "web"
    assert fields["involvedObject.uid"] == "u-1"
    assert fields["reason"] == "Scheduled"
    assert fields["type"] == "Normal"
    assert fields["source"] == "scheduler"


def test_namespace_phase_field() -> None:
    namespace = testing.namespace("prod")
    namespace.status.phase = "Terminating"
    assert object_fields("Namespace", namespace) == {
        "metadata.name": "prod",
        "metadata.namespace": "",
        "status.phase": "Terminating",
    }


def test_secret_type_field() -> None:
    secret = core_pb2.Secret(type="Opaque")
    secret.metadata.name, secret.metadata.namespace = "s", "default"
    assert object_fields("Secret", secret)["type"] == "Opaque"


def test_other_kinds_expose_name_and_namespace_only() -> None:
    config_map = testing.config_map("cfg")
    assert object_fields("ConfigMap", config_map) == {
        "metadata.name": "cfg",
        "metadata.namespace": "default",
    }


@pytest.mark.parametrize("kind", sorted(SUPPORTED_FIELDS))
def test_object_fields_cover_exactly_the_supported_fields(kind: str) -> None:
    from bosun.common.kinds import KINDS

    assert set(object_fields(kind, KINDS[kind].message())) == SUPPORTED_FIELDS[kind]


def test_supported_field_selector_is_accepted() -> None:
    validate_field_selector("Pod", parse_field_selector("spec.nodeName=a,metadata.name=b"))


def test_unsupported_field_selector_names_the_field_and_the_supported_ones() -> None:
    with pytest.raises(SelectorError) as caught:
        validate_field_selector("Pod", parse_field_selector("spec.hostname=x"))
    message = str(caught.value)
    assert '"spec.hostname" is not supported for Pod' in message
    assert "spec.nodeName" in message
    assert "status.phase" in message


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        ("My_Key.1", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("example.com/" + "a" * 63, True),
        ("Example.com/a", False),
        ("/a", False),
        ("a/", False),
        ("a/b/c", False),
        ("-a", False),
        ("a-", False),
        ("bad key", False),
        ("", False),
    ],
)
def test_qualified_names(value: str, valid: bool) -> None:
    assert (qualified_name_errors(value) == []) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        ("web", True),
        ("Web_1.x", True),
        ("v" * 63, True),
        ("v" * 64, False),
        ("-v", False),
        ("a b", False),
    ],
)
def test_label_values(value: str, valid: bool) -> None:
    assert (label_value_errors(value) == []) is valid


@pytest.mark.parametrize(
    ("value", "label", "subdomain"),
    [
        ("web", True, True),
        ("web-1", True, True),
        ("web.example", False, True),
        ("Web", False, False),
        ("web_", False, False),
        ("-web", False, False),
        ("a" * 64, False, True),
        ("a" * 254, False, False),
    ],
)
def test_dns1123_names(value: str, label: bool, subdomain: bool) -> None:
    assert (dns1123_label_errors(value) == []) is label
    assert (dns1123_subdomain_errors(value) == []) is subdomain
