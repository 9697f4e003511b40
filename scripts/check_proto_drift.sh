#!/usr/bin/env bash
# Fail when the committed generated code under libs/common/src/bosun/api differs from what
# proto/ generates now (same generators as scripts/gen_proto.sh, into a temp dir; nothing in the
# working tree is touched). Prints a unified diff of every drifted file.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
committed_root=libs/common/src
# The interpreter with grpcio-tools; its bin dir must hold the mypy-protobuf plugins.
python=${PYTHON:-$root/.venv/bin/python}
bindir=$(dirname "$python")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bosun-proto-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/generated" "$tmp/committed"

# Generate exactly as gen_proto.sh does, but into the temp dir.
mapfile -t protos < <(cd proto && find bosun -name '*.proto' | sort)
if [ "${#protos[@]}" -eq 0 ]; then
  echo "proto-check: no .proto files under proto/" >&2
  exit 1
fi
PATH="$bindir:$PATH" "$python" -m grpc_tools.protoc -Iproto \
  --python_out="$tmp/generated" --grpc_python_out="$tmp/generated" \
  --mypy_out=quiet:"$tmp/generated" --mypy_grpc_out=quiet:"$tmp/generated" \
  "${protos[@]}"

# Copy only the committed generated files (not hand-written modules that may sit beside them).
(cd "$committed_root" && find bosun/api -name '*_pb2*.py*' -print0) |
  (cd "$committed_root" && xargs -0 -r cp --parents -t "$tmp/committed")

status=0
# Files present on one side only: a proto added/removed without regenerating, or a stale leftover.
(cd "$tmp/committed" && find . -type f | sort) > "$tmp/committed.list"
(cd "$tmp/generated" && find . -type f | sort) > "$tmp/generated.list"
only_committed=$(comm -23 "$tmp/committed.list" "$tmp/generated.list" | sed 's#^\./##')
only_generated=$(comm -13 "$tmp/committed.list" "$tmp/generated.list" | sed 's#^\./##')
for f in $only_committed; do
  echo "proto-check: committed but no longer generated (stale): $committed_root/$f"; status=1
done
for f in $only_generated; do
  echo "proto-check: generated but not committed: $committed_root/$f"; status=1
done
# Content drift in files on both sides.
while read -r f; do
  if ! diff -u --label "$committed_root/${f#./} (committed)" --label "$committed_root/${f#./} (generated)" \
      "$tmp/committed/$f" "$tmp/generated/$f"; then
    status=1
  fi
done < <(comm -12 "$tmp/committed.list" "$tmp/generated.list")

if [ "$status" -eq 0 ]; then
  echo "proto-check: generated code is up to date (${#protos[@]} protos)"
  exit 0
fi
echo >&2
echo "proto-check: FAILED: the committed generated code under $committed_root/bosun/api differs" >&2
echo "proto-check: from what proto/ generates. Run 'make proto' and commit the result." >&2
exit 1
