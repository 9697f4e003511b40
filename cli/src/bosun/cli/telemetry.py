"""One trace per command: a root span around the command when an exporter is configured.

With OTEL_EXPORTER_OTLP_ENDPOINT set, bosunctl installs an OTLP tracer provider and runs each
command inside a `bosunctl <command>` span. The client's tracing interceptors start their RPC
spans as its children and carry the context to the apiserver, so one `apply` is one trace
from the CLI through the apiserver to etcd. Without the variable nothing is installed and the
span costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["command_span"]

_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


@contextmanager
def command_span(command: str) -> Iterator[None]:
    if not os.environ.get(_ENDPOINT):
        yield
        return
    from bosun.common.tracing import configure_tracing

    provider = configure_tracing("bosunctl", exporter="otlp")
    tracer = provider.get_tracer("bosun.cli")
    try:
        with tracer.start_as_current_span(f"bosunctl {command}".strip()):
            yield
    finally:
        provider.shutdown()
