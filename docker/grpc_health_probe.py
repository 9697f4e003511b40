#!/usr/bin/env python3
"""A container health probe: the standard gRPC health check (grpc.health.v1) of one server.

    grpc-health-probe [ADDRESS] [--service NAME] [--timeout SECONDS]

Exits 0 when the server answers SERVING, 1 otherwise (with the reason on stderr). ADDRESS
defaults to $BOSUN_HEALTH_ADDRESS, else 127.0.0.1:6443. Installed into the Bosun images as
/opt/bosun/bin/grpc-health-probe and used by their HEALTHCHECK (and by Kubernetes exec probes
where a native grpc probe cannot be used).
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grpc-health-probe", description=__doc__.split("\n")[0])
    parser.add_argument(
        "address", nargs="?", default=os.environ.get("BOSUN_HEALTH_ADDRESS", "127.0.0.1:6443")
    )
    parser.add_argument("--service", default="", help="service name ('' is the whole server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    args = parser.parse_args(argv)
    try:
        with grpc.insecure_channel(args.address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
    except grpc.RpcError as error:
        print(f"{args.address}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"{args.address}: {status}", file=sys.stderr)
        return 1
    print(f"{args.address}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
