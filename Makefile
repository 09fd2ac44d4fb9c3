# One command per job. Each runs `install` first; `install` is fast when nothing changed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.install-stamp

.PHONY: install demo test eval index lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/sourcing demo

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

eval: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/sourcing eval run --set evals/sets/demo_reserved.jsonl --out var/eval/demo_reserved

index: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/sourcing index build --catalog data/catalogs/demo --out var/index/demo

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf var .pytest_cache
