"""One trace per command: a root span around the command when an exporter is configured.

With OTEL_EXPORTER_OTLP_ENDPOINT set (OTLP) or BOSUN_TRACE_FILE (JSON lines, see
bosun.common.tracefile), bosunctl installs a tracer provider and runs each command inside a
`bosunctl <command>` span. The client's tracing interceptors start their RPC
spans as its children and carry the context to the apiserver, so one `apply` is one trace
from the CLI through the apiserver to etcd. Without the variable nothing is installed and the
span costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["command_span"]


@contextmanager
def command_span() -> Iterator[None]:
    """A root span `bosunctl` (BosunGroup renames it after the command) around one command."""
    from bosun.common.tracing import configure_tracing, exporter_from_environment

    exporter, endpoint = exporter_from_environment()
    if exporter == "none":
        yield
        return
    provider = configure_tracing("bosunctl", exporter=exporter, endpoint=endpoint)
    tracer = provider.get_tracer("bosun.cli")
    try:
        with tracer.start_as_current_span("bosunctl"):
            yield
    finally:
        provider.shutdown()
