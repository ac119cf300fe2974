# The two commands (see README): `make demo` runs the main job, `make test` runs the whole suite.
# Both set everything up first; a second run re-installs nothing unless requirements.txt or setup.py changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS_STAMP  := $(VENV)/.installed
SETUP_STAMP := .cache/.setup-done
# uv installs the pinned packages (the same versions pip would) from its cache, shared by a user's clones: all
# of `make setup` takes 41 s in a new clone on this 2-core machine, where pip alone took 155 s.
# --compile-bytecode, as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing else would, and every process
# would compile mlflow, pyspark, ... again (the suite's command-line tests took 2x as long).
UV_PIN      := uv==0.9.30
# pyspark is published as a source archive only, and uv builds it again on every install (48 s here, and 1.4 GB
# more of uv's cache each time). pip builds it into a wheel once, kept with this user's downloads (see
# lakehouse/install/paths.py), and uv takes it from there.
WHEELHOUSE  := $(or $(LAKEHOUSE_USER_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lakehouse)/wheels
PYSPARK_PIN := $(shell grep -E '^pyspark==' requirements.txt)

.PHONY: setup demo test lint format clean

setup: $(SETUP_STAMP)

$(DEPS_STAMP): requirements.txt constraints.txt setup.py
	@command -v java >/dev/null || { echo "Java (JDK 17) is required by Spark: apt-get install openjdk-17-jdk-headless" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(UV_PIN)
	ls $(WHEELHOUSE)/$(subst ==,-,$(PYSPARK_PIN))-*.whl >/dev/null 2>&1 || \
		$(BIN)/pip wheel --quiet --no-deps --wheel-dir $(WHEELHOUSE) $(PYSPARK_PIN)
	$(BIN)/uv pip install --python $(BIN)/python --native-tls --compile-bytecode --quiet --find-links $(WHEELHOUSE) \
		-r requirements.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --native-tls --quiet --no-deps -e .
	touch $@

$(SETUP_STAMP): $(DEPS_STAMP) lakehouse/install/jars.py lakehouse/cli/setup.py lakehouse/engine/session.py lakehouse/services/spark_conf.py \
		lakehouse/services/class_archive.py lakehouse/install/datasets.py lakehouse/install/sample_logs.py lakehouse/install/sample_databases.py
	$(BIN)/lakehouse setup
	mkdir -p .cache && touch $@

demo: setup
	$(BIN)/lakehouse pipeline --conf-file conf/local.yaml

test: setup lint
	$(BIN)/python -m pytest

# ruff (pyproject.toml): lint and format check; `make format` fixes what it can
lint: $(DEPS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEPS_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf warehouse data .pytest_cache
