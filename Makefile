# gollm — the commands a newcomer runs. Each target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: setup test test-python test-go build goldens clean

# The virtualenv is rebuilt whenever pyproject.toml changes.
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

test: test-python test-go

test-python: setup
	$(PY) -m pytest -q

test-go:
	cd goengine && go vet ./... && go test ./...

# The inference engine as one binary: bin/goengine.
build:
	cd goengine && go build -o ../bin/goengine ./cmd/goengine

# Regenerate the golden files from the NumPy reference (deterministic: byte-identical on rerun).
goldens: setup
	$(PY) -m jaxmodel.goldens --out goldens

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
