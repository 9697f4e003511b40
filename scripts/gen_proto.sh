#!/usr/bin/env bash
# Regenerate Python code from proto/ into libs/common/src (proto paths == import paths).
set -euo pipefail
cd "$(dirname "$0")/.."
out=libs/common/src
find "$out/bosun/api" -name '*_pb2*.py*' -delete 2>/dev/null || true
mapfile -t protos < <(cd proto && find bosun -name '*.proto' | sort)
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m grpc_tools.protoc -Iproto \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  "${protos[@]}"
