# minop — the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
CLUSTER ?= local
# e2e workers: scenarios run in parallel namespaces.
E2E_WORKERS ?= 4
PYTEST_ARGS ?=
# make bench: objects per burst, trials per contender, extra flags (python -m tests.bench -h)
N ?= 200
REPEATS ?= 3
BENCH_ARGS ?=

export MINOP_CACHE ?= $(HOME)/.cache/minop

.PHONY: help venv run test unit e2e e2e-kind chaos lint cluster-up cluster-down crds bundle bundle-check bundle-validate image bench

# The bundle is reproducible: its version, image and createdAt come from the repo
# (createdAt: the commit that set the version, not whatever touched pyproject.toml last).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= quay.io/minop/minop:v$(VERSION)
CREATED_AT := $(shell git log -1 --format=%cI -S'version = "$(VERSION)"' -- pyproject.toml 2>/dev/null)
BUNDLE_ARGS = --version $(VERSION) --image $(IMAGE) --created-at "$(CREATED_AT)"

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(VENV)/.stamp: pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' $(foreach p,$(dir $(PLUGINS)),-e ./$(p))
	touch $@

venv: $(VENV)/.stamp ## create .venv with minop, its plugins and dev tools

run: venv ## start a local cluster unless KUBECONFIG is set, install CRDs, run the operator
	@hack/run.sh

test: lint bundle-check bundle-validate unit e2e e2e-kind ## everything: lint, bundle, unit, e2e on a local cluster, then on kind

unit: venv ## fast tests and real-program checks (redis, nginx, memcached), no cluster
	@hack/test-deps.sh
	$(PY) -m pytest -q -n 2 tests/unit $(wildcard plugins/*/tests) $(PYTEST_ARGS)

e2e: venv ## e2e suite; CLUSTER=local (default) | kind | existing (uses KUBECONFIG)
	@CLUSTER=$(CLUSTER) E2E_WORKERS=$(E2E_WORKERS) PYTEST_ARGS="$(PYTEST_ARGS)" hack/e2e.sh

e2e-kind: venv ## the e2e suite on kind with real pods, as make test runs it (MINOP_KIND=0 skips it, loudly)
	@if [ "$${MINOP_KIND:-1}" = 0 ]; then \
	  printf '\n==== SKIPPED: kind e2e suite (MINOP_KIND=0): the real-pod scenarios did NOT run ====\n\n' >&2; \
	else CLUSTER=kind E2E_WORKERS=$(E2E_WORKERS) PYTEST_ARGS="$(PYTEST_ARGS)" hack/e2e.sh; fi

chaos: venv ## the reliability and security suite (tests/chaos) on a local cluster; writes tests/chaos/results/
	@PYTEST_ARGS="$(PYTEST_ARGS)" hack/chaos.sh

lint: venv ## ruff and mypy
	$(VENV)/bin/ruff check minop plugins tests
	$(VENV)/bin/ruff format --check minop plugins tests
	$(VENV)/bin/mypy minop $(dir $(wildcard plugins/*/minop_*/__init__.py))

cluster-up: ## start the local control plane (CLUSTER=local|kind) and print the KUBECONFIG line
	@hack/cluster.sh up $(CLUSTER)

cluster-down: ## stop exactly what cluster-up started
	@hack/cluster.sh down $(CLUSTER)

crds: venv ## print the CRDs of every installed plugin
	@$(PY) -m minop crds

bundle: venv ## regenerate bundle/ (OLM) and config/ (plain manifests) from the plugins
	$(PY) -m minop bundle --output bundle --manifests config $(BUNDLE_ARGS)

bundle-check: venv ## fail when bundle/ differs from what `make bundle` generates
	@tmp=$$(mktemp -d) && $(PY) -m minop bundle --output $$tmp/bundle --manifests $$tmp/config \
	  $(BUNDLE_ARGS) && diff -ru bundle $$tmp/bundle && diff -ru config $$tmp/config || \
	  { echo "bundle/ or config/ is stale: run make bundle and commit it" >&2; exit 1; }

bundle-validate: ## operator-sdk bundle validate with the operatorframework suite
	@hack/bundle-validate.sh

$(VENV)/.bench-stamp: $(VENV)/.stamp pyproject.toml
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

bench: venv $(VENV)/.bench-stamp ## minop vs Kopf vs a hand-written floor (N=200 REPEATS=3 BENCH_ARGS=...; not in make test)
	@$(PY) -m tests.bench --n $(N) --repeats $(REPEATS) $(BENCH_ARGS)

image: venv ## build the operator image (BASE=... to use a locally built base)
	@IMAGE=$(IMAGE) hack/image.sh
