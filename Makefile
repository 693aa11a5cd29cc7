# Every target installs the project first (`make install`), so any of them works as the first
# command on a fresh machine. Outputs go under $(OUT) (default: out/).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WUKONG_CLI := $(VENV)/bin/wukong
# SUBMIT=1 runs a stage as a Ray job of the `make dashboard` head (its driver log on the job page).
WUKONG := $(WUKONG_CLI)$(if $(SUBMIT), submit --)
STAMP := $(VENV)/.installed-stamp
OUT ?= out
CONFIG ?=
SET ?=
CONFIG_ARGS := $(if $(CONFIG),--config $(CONFIG)) $(foreach s,$(SET),--set $(s))
PYTEST_ARGS ?=

# Ray 2.60 enables token auth by default; local runs use a project-local Ray instead.
export RAY_AUTH_MODE ?= disabled
export PYTHONUNBUFFERED := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install test test-slow test-all demo crawl download filter dedup shards pretrain eval \
        bench bench-ingest bench-crawl bench-filters bench-filter-stage bench-dedup bench-train bench-scale dashboard \
        dashboard-stop dashboard-status config-doc clean

help:
	@echo "make demo       the whole pipeline on the bundled demo web (crawl, filter, dedup, shards, pretrain, eval)"
	@echo "make test       the test suite (slow end-to-end tests: make test-slow)"
	@echo "make crawl      discover + download (demo web by default; QUERIES=, URLS=, CONFIG= for real targets)"
	@echo "make filter | dedup | shards | pretrain | eval   one stage on the previous stage's output under OUT=$(OUT)"
	@echo "make bench      benchmarks against peers (img2dataset, imagehash, open_clip)"
	@echo "make dashboard  a local Ray head with its dashboard (and Prometheus if installed); stages started"
	@echo "                meanwhile attach to it; SUBMIT=1 runs a stage as a job of it; make dashboard-stop ends it"

# torch and torchvision first and together (see ../shared/ENVIRONMENT.md), then the pinned set.
$(STAMP): requirements.txt setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Exit status 5 means no test was selected, which is not a failure here.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-all: test test-slow

demo: $(STAMP)
	$(WUKONG) demo --output $(OUT)/demo $(CONFIG_ARGS)

# No arguments: serve the demo web on 127.0.0.1 and crawl it. QUERIES=file [SEARCH_URL=template],
# START_URLS="url ...", or URLS="list.csv ..." (a URL list: download only) crawl a real target.
crawl: $(STAMP)
ifneq ($(URLS),)
	$(WUKONG) download $(URLS) --output $(OUT)/crawl/raw $(CONFIG_ARGS)
else
	$(WUKONG) crawl --output $(OUT)/crawl $(if $(QUERIES),--queries $(QUERIES)) \
		$(if $(SEARCH_URL),--search-url '$(SEARCH_URL)') $(foreach u,$(START_URLS),--start-url $(u)) $(CONFIG_ARGS)
endif

download: $(STAMP)
	$(WUKONG) download $(URLS) --output $(OUT)/crawl/raw $(CONFIG_ARGS)

filter: $(STAMP)
	$(WUKONG) filter $(OUT)/crawl/raw --output $(OUT)/filter $(CONFIG_ARGS)

dedup: $(STAMP)
	$(WUKONG) dedup $(OUT)/crawl/raw --kept $(OUT)/filter --output $(OUT)/dedup $(CONFIG_ARGS)

shards: filter dedup
	$(WUKONG) shards $(OUT)/crawl/raw --filter $(OUT)/filter --dedup $(OUT)/dedup --output $(OUT)/shards $(CONFIG_ARGS)

pretrain: $(STAMP)
	$(WUKONG) pretrain --train-shards $(OUT)/shards/train --val-shards $(OUT)/shards/val \
		--output $(OUT)/model $(CONFIG_ARGS)

eval: $(STAMP)
	$(WUKONG) eval retrieval --checkpoint $(OUT)/model/checkpoints/latest.pt --shards $(OUT)/shards/val $(CONFIG_ARGS)

bench: bench-ingest bench-crawl bench-filters bench-filter-stage bench-dedup bench-train bench-scale

bench-ingest: $(STAMP)
	$(PY) bench/ingest.py
bench-crawl: $(STAMP)
	$(PY) bench/crawl.py
bench-filters: $(STAMP)
	$(PY) bench/filters.py
bench-filter-stage: $(STAMP)
	$(PY) bench/filter_stage.py
bench-dedup: $(STAMP)
	$(PY) bench/dedup.py
bench-train: $(STAMP)
	$(PY) bench/train.py

# filter -> dedup -> shards on synthetic raw shards at each size, then the growth between the first
# two sizes (docs/scale.md). SCALE_CLUSTER=1 attaches every stage to a two-node local Ray cluster.
# Disk: ~6.5 KB a sample while a size runs (raw + final shards), ~60 GB at 10M.
SCALE_SAMPLES ?= 1000000 10000000
SCALE_CLUSTER ?=
bench-scale: $(STAMP)
	for n in $(SCALE_SAMPLES); do $(PY) bench/scale.py --samples $$n $(if $(SCALE_CLUSTER),--cluster) || exit 1; done
	$(if $(word 2,$(SCALE_SAMPLES)),$(PY) bench/scale.py --compare $(wordlist 1,2,$(SCALE_SAMPLES)) $(if $(SCALE_CLUSTER),--cluster))

# Starts Prometheus beside the head when the `prometheus` program is installed; GRAFANA_HOST=URL
# puts that Grafana in the dashboard's Metrics tab. Stop ends exactly the processes recorded at start.
dashboard: $(STAMP)
	$(WUKONG_CLI) dashboard start $(if $(GRAFANA_HOST),--grafana-host $(GRAFANA_HOST)) $(CONFIG_ARGS)

dashboard-stop: $(STAMP)
	$(WUKONG_CLI) dashboard stop $(CONFIG_ARGS)

dashboard-status: $(STAMP)
	$(WUKONG_CLI) dashboard status $(CONFIG_ARGS)

config-doc: $(STAMP)
	$(WUKONG_CLI) config --doc > docs/configuration.md

clean:
	rm -rf $(OUT) .ray
