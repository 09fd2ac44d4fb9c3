# One command per job. Each runs `install` first; `install` is fast when nothing changed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.install-stamp

.PHONY: install demo test eval index lint clean serve fuzz-api bench bench-scale

install: $(STAMP)

$(STAMP): pyproject.toml setup.py retrieval/_walk.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/sourcing demo

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

serve: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/uvicorn --factory api.app:create_app --host $(HOST) --port $(PORT)

fuzz-api: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests/test_api_fuzz.py

eval: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/sourcing eval run --set evals/sets/demo_reserved/demo_reserved.jsonl --out var/eval/demo_reserved

index: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/sourcing index build --catalog data/catalogs/demo --out var/index/demo

# overheads as ratios against bare baselines, measured in one run (about a minute); exits 1 when a
# target is missed. Not part of `make test`: tests check behaviour, never wall-clock time.
bench: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.bench

# 1,000,000 synthetic listings: build, save, load, search with and without filters (~2 minutes
# on 2 cores, 1.5 GiB of memory at 217 floats a vector). The fixed mmap threshold makes glibc hand
# the inverted lists' buffers back when they grow, instead of keeping the freed ones in its heap.
bench-scale: install
	HF_HUB_OFFLINE=1 MALLOC_MMAP_THRESHOLD_=131072 $(PY) -m bench.scale

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf var .pytest_cache
