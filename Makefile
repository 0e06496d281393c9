# Two commands set everything up on a fresh machine:
#   make demo   materialize every partition of the demo recipe's whole graph
#   make test   run the test suite
# Both create .venv/ when needed and honour LGT_HOME, DAGSTER_HOME and LGT_RECIPE.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

export LGT_HOME ?= $(CURDIR)/.lgt
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export LGT_RECIPE ?= $(CURDIR)/recipes/demo.yaml
PORT ?= 3000
BIN := .venv/bin
LOG_LEVEL ?= INFO
# in_process: a run's steps share one process, so torch is imported and each model loaded once per run
# (measured faster on CPU, see benchmarks/HISTORY.md); multiprocess: a subprocess per step
EXECUTOR ?= in_process

.PHONY: demo test lint ui instance materialize screenshots clean

.venv/.installed: pyproject.toml scripts/setup-venv.sh
	scripts/setup-venv.sh dev
	touch $@

# vLLM's CPU build in its own environment, for the vllm backend's tests (nothing to do on a GPU machine)
.venv-vllm/.installed: scripts/setup-vllm.sh
	scripts/setup-vllm.sh
	mkdir -p .venv-vllm && touch $@

# The Dagster instance: copy dagster.yaml in unless DAGSTER_HOME already has one.
instance: .venv/.installed
	mkdir -p "$(DAGSTER_HOME)" "$(LGT_HOME)"
	[ -f "$(DAGSTER_HOME)/dagster.yaml" ] || cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	$(BIN)/dagster instance concurrency set gpu 1 >/dev/null

# The whole graph in waves of one partitioning each (scripts/materialize.sh, `python -m lgt_assets.selection
# waves`): base_model; every <source>/<shard> asset over the shard range in one run; exports, checkpoints and
# benchmark suites; the <model>/<suite> scores in one run; the report. The same CLI path CI uses.
materialize: instance
	scripts/materialize.sh '{"execution": {"config": {"$(EXECUTOR)": {}}}, "loggers": {"console": {"config": {"log_level": "$(LOG_LEVEL)"}}}}'

demo: materialize

# two workers, a file each at a time (a module's fixtures, such as its served model, load once); TEST_WORKERS=0: serial
TEST_WORKERS ?= 2
test: .venv/.installed .venv-vllm/.installed
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# ruff: the formatter and the linter (pyproject.toml [tool.ruff]); CI runs the same
lint: .venv/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# The webserver and the daemon: the recipe's automation (sensors, schedule) runs while it is up
ui: instance
	@echo "Dagster UI on http://127.0.0.1:$(PORT) (webserver and daemon; automation on unless the recipe says off)"
	$(BIN)/dagster dev -m definitions -h 127.0.0.1 -p $(PORT)

# the UI's screenshots in docs/ui/, taken by the UI test in headless Chromium
screenshots: .venv/.installed
	scripts/install-browser.sh
	LGT_UPDATE_SCREENSHOTS=1 LGT_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q tests/system/test_ui.py

clean:
	rm -rf .lgt .dagster
