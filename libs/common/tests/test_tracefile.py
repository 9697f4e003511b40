"""Spans to a JSON-lines file, and the exporter the environment chooses."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from bosun.common.tracefile import JsonLinesSpanExporter
from bosun.common.tracing import exporter_from_environment


def test_each_span_is_one_line_with_its_parent(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "bosun-test"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        inner.set_attribute("bosun.kind", "Pod")
    provider.shutdown()

    inner_line, outer_line = (json.loads(line) for line in path.read_text().splitlines())
    assert (inner_line["name"], outer_line["name"]) == ("inner", "outer")
    assert inner_line["parent_span_id"] == outer_line["span_id"]
    assert outer_line["parent_span_id"] == ""
    assert inner_line["trace_id"] == outer_line["trace_id"]
    assert inner_line["service"] == "bosun-test"
    assert inner_line["attributes"] == {"bosun.kind": "Pod"}


def test_two_exporters_append_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    for name in ("first", "second"):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
        provider.get_tracer("test").start_span(name).end()
        provider.shutdown()
    assert [json.loads(line)["name"] for line in path.read_text().splitlines()] == [
        "first",
        "second",
    ]


def test_an_otlp_endpoint_chooses_otlp_over_the_file() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "BOSUN_TRACE_FILE": "x"}
    assert exporter_from_environment(environ) == ("otlp", None)


def test_a_trace_file_alone_chooses_the_file() -> None:
    assert exporter_from_environment({"BOSUN_TRACE_FILE": "/tmp/s.jsonl"}) == (
        "file",
        "/tmp/s.jsonl",
    )


def test_no_variables_export_nothing() -> None:
    assert exporter_from_environment({}) == ("none", None)
