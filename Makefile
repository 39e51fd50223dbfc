# Two commands do everything on a fresh machine (Python 3.11 and make):
#   make review   render the sample quarterly review (creates .venv if missing)
#   make test     run the whole test suite          (creates .venv if missing)

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: review test venv sample validate bench bench-review bench-engines clean help

help:
	@echo "make review   render the sample quarterly review into reports/"
	@echo "make test     run every test"
	@echo "make validate data-quality report of the sample"
	@echo "make sample   regenerate data/sample from the generator"
	@echo "make bench    scale benchmark: review sections, renders and a cold query on a 5,000-rep"
	@echo "              dataset in /tmp (generated once); parts: make bench BENCH_ARGS='--only query'"
	@echo "make bench-review  time the sample quarterly review render (target under 10 s)"
	@echo "make bench-engines the same figures timed on DuckDB and Spark (needs Java 17), on the"
	@echo "              5,000-rep dataset; e.g. BENCH_ARGS='--data data/sample --engines duckdb,spark,postgres'"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

review: $(STAMP)
	$(BIN)/python -m analysis review --cadence quarterly --data data/sample --out reports

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal

validate: $(STAMP)
	$(BIN)/python -m analysis validate data/sample

sample: $(STAMP)
	$(BIN)/python -m analysis sample --out data/sample --reps 40 --months 24 --seed 7 --end 2026-09-30 --format mixed

# parts of the scale benchmark, e.g. BENCH_ARGS='--only query' or '--only render --scope rep'
BENCH_ARGS ?=

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_ARGS)

bench-review: $(STAMP)
	$(BIN)/python benchmarks/bench_review.py

# load, metric catalog, funnel and waterfall per engine (Spark: Debian's openjdk-17-jre-headless;
# postgres in --engines: Debian's postgresql); BENCH_ARGS as for bench, e.g. '--engines duckdb,spark'
bench-engines: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[spark,postgres]'
	$(BIN)/python benchmarks/bench_engines.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
