#!/usr/bin/env python3
"""A container health probe for components that serve plain HTTP health (/healthz, /metrics).

    http-health-probe [URL] [--timeout SECONDS]

Exits 0 when a GET of URL answers 2xx, 1 otherwise (with the reason on stderr). URL defaults to
$BOSUN_HEALTH_URL, else http://127.0.0.1:8080/healthz. Installed into the Bosun images as
/opt/bosun/bin/http-health-probe and used by the HEALTHCHECK of the DNS server, kube-proxy and
the kubelet (which have no gRPC health service of their own in every mode). Standard library
only, so that it works in any image with a Python.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="http-health-probe", description=__doc__.split("\n")[0])
    parser.add_argument(
        "url",
        nargs="?",
        default=os.environ.get("BOSUN_HEALTH_URL", "http://127.0.0.1:8080/healthz"),
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    args = parser.parse_args(argv)
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:  # 4xx/5xx: the body says why (e.g. lastError)
        body = error.read(500).decode(errors="replace")
        print(f"{args.url}: HTTP {error.code} {body}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"{args.url}: {error}", file=sys.stderr)
        return 1
    print(f"{args.url}: HTTP {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
