"""`logs`, `exec` and `top`: a pod's output, a command in it, and CPU/memory use.

All three use the kubelet service (bosun.api.kubelet.v1.Kubelet) through the apiserver, which
forwards each call to the pod's (or node's) kubelet: bosunctl needs no route to the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence

import click
import grpc

from bosun.api.kubelet.v1 import kubelet_pb2, kubelet_pb2_grpc
from bosun.cli.durations import Duration
from bosun.cli.errors import CliError
from bosun.cli.session import connection_options, run, session
from bosun.common.client import Client
from bosun.common.errors import from_rpc_error

__all__ = ["exec_", "logs", "top"]


def _stub(client: Client) -> kubelet_pb2_grpc.KubeletAsyncStub:
    return kubelet_pb2_grpc.KubeletStub(client.channel)


@contextlib.contextmanager
def _rpc_errors() -> Iterator[None]:
    """A status from the kubelet (or the proxy) as the library's ApiError: printed like any
    other "Error from server (NotFound): …"."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from None


@click.command()
@click.argument("pod")
@click.option(
    "-c", "--container", default="", help="The container (needed when there are several)."
)
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new output.")
@click.option("--tail", type=int, default=-1, help="Only the last N lines (-1: all).")
@click.option("--since", type=Duration(), default=None, help="Only output newer than this (5m).")
@click.option("-p", "--previous", is_flag=True, help="The previous, terminated, instance.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time.")
@connection_options
@click.pass_context
def logs(
    ctx: click.Context,
    pod: str,
    container: str,
    follow: bool,
    tail: int,
    since: float | None,
    previous: bool,
    timestamps: bool,
) -> None:
    """Print a container's output. Examples: bosunctl logs web; bosunctl logs -f web -c app"""
    current = session(ctx)
    request = kubelet_pb2.LogsRequest(
        namespace=current.namespace,
        pod=pod,
        container=container,
        follow=follow,
        since_seconds=int(since or 0),
        timestamps=timestamps,
        previous=previous,
    )
    if tail >= 0:
        request.tail_lines = tail

    async def work(client: Client) -> None:
        timeout = current.watch_timeout if follow else current.call_timeout
        with _rpc_errors():
            async for chunk in _stub(client).ContainerLogs(request, timeout=timeout):
                sys.stdout.buffer.write(chunk.data)
                sys.stdout.buffer.flush()

    with contextlib.suppress(KeyboardInterrupt):
        run(current, work)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "-c", "--container", default="", help="The container (needed when there are several)."
)
@click.option("-i", "--stdin", is_flag=True, help="Pass this terminal's stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a TTY for the command.")
@connection_options
@click.pass_context
def exec_(
    ctx: click.Context, pod: str, command: Sequence[str], container: str, stdin: bool, tty: bool
) -> None:
    """Run a command in a container: bosunctl exec web -- ls /; exits with its exit code."""
    current = session(ctx)
    start = kubelet_pb2.ExecStart(
        namespace=current.namespace,
        pod=pod,
        container=container,
        command=list(command),
        stdin=stdin,
        tty=tty,
    )

    async def requests() -> AsyncIterator[kubelet_pb2.ExecRequest]:
        yield kubelet_pb2.ExecRequest(start=start)
        if not stdin:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        source = sys.stdin.buffer
        # read1: whatever is available (a line typed at a terminal), not a full buffer.
        read_some = getattr(source, "read1", source.read)

        def read() -> None:  # a thread: stdin cannot be read without blocking
            try:
                while data := read_some(65536):
                    loop.call_soon_threadsafe(queue.put_nowait, data)
            finally:  # end of input, or stdin failed: either way the command sees EOF
                loop.call_soon_threadsafe(queue.put_nowait, b"")

        threading.Thread(target=read, daemon=True).start()
        while data := await queue.get():
            yield kubelet_pb2.ExecRequest(stdin=data)
        yield kubelet_pb2.ExecRequest(stdin_eof=True)

    async def work(client: Client) -> int:
        code = 0
        with _rpc_errors():
            async for response in _stub(client).Exec(requests(), timeout=current.watch_timeout):
                if response.stdout:
                    sys.stdout.buffer.write(response.stdout)
                    sys.stdout.buffer.flush()
                if response.stderr:
                    sys.stderr.buffer.write(response.stderr)
                    sys.stderr.buffer.flush()
                if response.HasField("exit_code"):
                    code = response.exit_code
        return code

    code = run(current, work)
    if code:
        ctx.exit(code)


def cores(nano_cores: int) -> str:
    return f"{round(nano_cores / 1_000_000)}m"


def mebibytes(value: int) -> str:
    return f"{round(value / (1024 * 1024))}Mi"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


@click.group()
def top() -> None:
    """CPU and memory use of pods or nodes (from their kubelets)."""


@top.command("pods")
@click.option("-A", "--all-namespaces", is_flag=True, help="Pods of every namespace.")
@click.option("--containers", is_flag=True, help="One line per container.")
@connection_options
@click.pass_context
def top_pods(ctx: click.Context, all_namespaces: bool, containers: bool) -> None:
    """Example: bosunctl top pods -A"""
    current = session(ctx)
    namespace = "" if all_namespaces else current.namespace

    async def work(client: Client) -> list[kubelet_pb2.PodStats]:
        pods = await client.pods.list_all(namespace=namespace)
        nodes = sorted({p.spec.node_name for p in pods.items if p.spec.node_name})
        stub = _stub(client)
        found: list[kubelet_pb2.PodStats] = []
        for node in nodes:
            try:
                reply = await stub.Stats(
                    kubelet_pb2.StatsRequest(node=node, namespace=namespace),
                    timeout=current.call_timeout,
                )
            except grpc.aio.AioRpcError as error:
                click.echo(f"warning: node {node}: {error.details()}", err=True)
                continue
            found.extend(reply.pods)
        return found

    stats = sorted(run(current, work), key=lambda p: (p.namespace, p.name))
    if not stats:
        raise CliError("error: metrics not available yet (no running pods with a kubelet)")
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME"]
    header += ["CONTAINER"] if containers else []
    header += ["CPU(cores)", "MEMORY(bytes)"]
    rows: list[list[str]] = []
    for pod in stats:
        prefix = ([pod.namespace] if all_namespaces else []) + [pod.name]
        if containers:
            for c in pod.containers:
                rows.append(
                    [
                        *prefix,
                        c.name,
                        cores(c.cpu_usage_nano_cores),
                        mebibytes(c.memory_working_set_bytes),
                    ]
                )
        else:
            rows.append(
                [*prefix, cores(pod.cpu_usage_nano_cores), mebibytes(pod.memory_working_set_bytes)]
            )
    click.echo(_table(header, rows))


@top.command("nodes")
@connection_options
@click.pass_context
def top_nodes(ctx: click.Context) -> None:
    """Example: bosunctl top nodes"""
    current = session(ctx)

    async def work(client: Client) -> list[list[str]]:
        nodes = await client.nodes.list_all()
        stub = _stub(client)
        rows = []
        for node in sorted(nodes.items, key=lambda n: n.metadata.name):
            try:
                reply = await stub.Stats(
                    kubelet_pb2.StatsRequest(node=node.metadata.name), timeout=current.call_timeout
                )
            except grpc.aio.AioRpcError:
                rows.append(
                    [node.metadata.name, "<unknown>", "<unknown>", "<unknown>", "<unknown>"]
                )
                continue
            stats = reply.node
            cpu_share = stats.cpu_usage_nano_cores / max(1, stats.cpu_capacity_nano_cores)
            memory_used = stats.memory_capacity_bytes - stats.memory_available_bytes
            memory_share = memory_used / max(1, stats.memory_capacity_bytes)
            rows.append(
                [
                    node.metadata.name,
                    cores(stats.cpu_usage_nano_cores),
                    f"{cpu_share:.0%}",
                    mebibytes(memory_used),
                    f"{memory_share:.0%}",
                ]
            )
        return rows

    rows = run(current, work)
    click.echo(_table(["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"], rows))
