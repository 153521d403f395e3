# The project's commands. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

# Debian packages the build, the tests and the demo need (installed once, skipped when present).
APT_PACKAGES := clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc binaryen wabt patchelf \
	docker-registry apache2-utils skopeo openssl

.PHONY: setup system-deps venv build demo test lint bench clean

setup: system-deps venv

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,build]'
	touch $@

build: setup
	$(BIN)/tokenusage build

demo: build
	$(BIN)/tokenusage demo
	@echo; echo "== examples/policy.yaml rendered to a Higress WasmPlugin (tokenusage render) =="
	$(BIN)/tokenusage render examples/policy.yaml

test: setup
	$(BIN)/pytest -q

lint: venv
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf dist build .pytest_cache .mypy_cache
