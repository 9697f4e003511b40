#!/usr/bin/env bash
# Build the kubelet's local images from Debian's busybox-static (/bin/busybox): no registry needed.
#
#   services/kubelet/images/build.sh [TAG]     # bosun/pause:TAG and bosun/busybox:TAG (TAG: dev)
#
# bosun/pause is the default pod sandbox image (bosun-kubelet --pod-infra-image); bosun/busybox
# is what the kubelet's tests and examples run. Both build in about a second when cached.
set -euo pipefail
tag="${1:-dev}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
busybox="${BUSYBOX:-/bin/busybox}"
[ -x "$busybox" ] || { echo "no $busybox: apt-get install busybox-static" >&2; exit 1; }
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$busybox" "$context/busybox"
cp "$here/pause.sh" "$context/pause.sh"
docker build --quiet -f "$here/pause.Dockerfile" -t "bosun/pause:$tag" "$context" >/dev/null
docker build --quiet -f "$here/busybox.Dockerfile" -t "bosun/busybox:$tag" "$context" >/dev/null
echo "built bosun/pause:$tag bosun/busybox:$tag"
