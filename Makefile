# Bosun developer entry points. `make` (or `make help`) lists the targets.
# Every target line carries a `## ` comment: that is what `make help` prints.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
# uv must never fetch a Python: use the interpreter that is already here.
export UV_PYTHON_DOWNLOADS := never
# Extra flags: `make install UV_SYNC_FLAGS=--inexact`, `make up CLUSTER_FLAGS="--apiserver-port 7443"`.
UV_SYNC_FLAGS ?=
CLUSTER_FLAGS ?=
PYTEST_FLAGS ?=
BENCH_FLAGS ?=

MYPY_PATHS := libs/common/src/bosun/common services/apiserver/src/bosun/apiserver cli/src/bosun/cli services/kubelet/src/bosun/kubelet services/scheduler/src/bosun/scheduler services/controller-manager/src/bosun/controllermanager services/kube-proxy/src/bosun/proxy services/dns/src/bosun/dns
# The compose v2 plugin when present, else Debian's docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FLAGS ?=
COMPOSE_DOWN_FLAGS ?=
CLUSTER := $(VENV)/bin/bosunctl local --state-dir .bosun $(CLUSTER_FLAGS)

.PHONY: help install proto proto-check lint test up down status logs bench-apiserver bench-proxy clean \
	base-image images compose-up compose-down bench-kubelet bench-nodes bench-scheduler

help: ## Show this list of targets (the default)
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_.-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

install: ## Create/sync .venv with uv (pip-installs uv if missing; never downloads a Python)
	@uv="$$(command -v uv || true)"; \
	if [ -z "$$uv" ]; then \
	  echo "uv not found: installing it with $(PYTHON) -m pip"; \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check uv \
	    || $(PYTHON) -m pip install --quiet --disable-pip-version-check --break-system-packages uv; \
	  uv="$$(command -v uv || echo "$(PYTHON) -m uv")"; \
	fi; \
	if [ -f uv.lock ]; then frozen=--frozen; else frozen=; fi; \
	echo "$$uv sync $$frozen --all-packages --python $(PYTHON) $(UV_SYNC_FLAGS)"; \
	$$uv sync $$frozen --all-packages --python $(PYTHON) $(UV_SYNC_FLAGS)

# Targets that only need *a* venv depend on its interpreter, so they do not re-sync every time.
$(VENV_PY):
	@$(MAKE) install

proto: $(VENV_PY) ## Regenerate Python code from proto/ into libs/common/src (commit the result)
	scripts/gen_proto.sh

proto-check: $(VENV_PY) ## Fail (with the diff) when committed generated code differs from proto/
	@scripts/check_proto_drift.sh

lint: $(VENV_PY) ## ruff check, ruff format --check, mypy on every package
	@status=0; \
	echo "+ ruff check ."; $(VENV)/bin/ruff check . || status=1; \
	echo "+ ruff format --check ."; $(VENV)/bin/ruff format --check --output-format concise . \
	  || { status=1; echo "  (see the changes: $(VENV)/bin/ruff format --diff .; apply: $(VENV)/bin/ruff format .)"; }; \
	echo "+ mypy $(MYPY_PATHS)"; $(VENV)/bin/mypy $(MYPY_PATHS) || status=1; \
	exit $$status

test: install ## Install, check generated code for drift, run every test (pytest -q)
	@scripts/check_proto_drift.sh
	$(VENV)/bin/pytest -q $(PYTEST_FLAGS)

up: install ## Start the local cluster under .bosun/ (bosunctl local up): every component, healthy
	@$(CLUSTER) up

down: ## Stop the local cluster (SIGTERM, then SIGKILL after 10 s); .bosun/etcd data stays
	@if [ -x $(VENV_PY) ]; then $(CLUSTER) down; else echo "no $(VENV): nothing runs"; fi

status: $(VENV_PY) ## Show each local-cluster component as up or down, with pid, address, log
	@$(CLUSTER) status || true

logs: $(VENV_PY) ## Follow the local cluster's logs (Ctrl-C stops)
	@$(CLUSTER) logs --follow

base-image: ## Build bosun/python-base:bookworm locally (debootstrap + docker import; no registry)
	scripts/build_images.sh base

images: $(VENV_PY) ## Build every image (base if missing, wheelhouse, etcd, components); TAG=dev
	scripts/build_images.sh

compose-up: images ## Run the stack with deploy/compose (COMPOSE_FLAGS="--profile proxy" adds kube-proxy)
	$(COMPOSE) -f deploy/compose/docker-compose.yaml -p bosun $(COMPOSE_FLAGS) up -d
	@echo "apiserver on 127.0.0.1:$${BOSUN_APISERVER_PORT:-6443}: bosunctl --server 127.0.0.1:$${BOSUN_APISERVER_PORT:-6443} get ns"

compose-down: ## Stop the compose stack (add COMPOSE_DOWN_FLAGS=--volumes to delete etcd's data)
	$(COMPOSE) -f deploy/compose/docker-compose.yaml -p bosun $(COMPOSE_FLAGS) down $(COMPOSE_DOWN_FLAGS)

bench-apiserver: $(VENV_PY) ## Benchmark the apiserver against raw etcd (writes bench/results/apiserver.json)
	$(VENV_PY) bench/apiserver_bench.py $(BENCH_FLAGS)

bench-kubelet: $(VENV_PY) ## Pod startup through the kubelet vs raw docker run (bench/results/kubelet.json)
	$(VENV_PY) bench/kubelet_bench.py $(BENCH_FLAGS)

bench-nodes: $(VENV_PY) ## 1,000 simulated nodes, 30,000 pods against one apiserver (bench/results/nodes.json)
	$(VENV_PY) bench/nodes_bench.py $(BENCH_FLAGS)

bench-scheduler: $(VENV_PY) ## Scheduler pods/s vs the raw Bind ceiling, 500 and 5,000 nodes (bench/results/scheduler.json)
	$(VENV_PY) bench/scheduler_bench.py $(BENCH_FLAGS)

bench-proxy: $(VENV_PY) ## kube-proxy sync vs iptables-restore, 1k/5k/10k services, as root (bench/results/proxy.json)
	$(VENV_PY) bench/proxy_bench.py $(BENCH_FLAGS)

clean: ## Stop the local cluster, delete .bosun/ (etcd data, logs) and caches; keeps .venv
	@if [ -x $(VENV_PY) ]; then $(CLUSTER) down; fi
	rm -rf .bosun .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d -name '*.egg-info' -prune -exec rm -rf {} +
