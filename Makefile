# The two commands of the README:
#   make demo   set up, ingest data-samples/docs, create demo users, then serve the web app on it (http://localhost:8501)
#   make test   set up, then run the whole test suite with no network
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= archivist-data

.PHONY: setup demo test bench
setup:
	@bash .ci/setup

demo: setup
	ARCHIVIST_DATA_DIR=$(DATA) $(BIN)/archivist ingest data-samples/docs
	ARCHIVIST_DATA_DIR=$(DATA) $(BIN)/archivist stats
	ARCHIVIST_DATA_DIR=$(DATA) $(BIN)/archivist users demo
	ARCHIVIST_DATA_DIR=$(DATA) $(BIN)/archivist serve $(SERVE_ARGS)

test: setup
	bash .ci/offline $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/ingest_speed.py
	$(BIN)/python bench/answers.py
	$(BIN)/python bench/reindex_speed.py
	$(BIN)/python bench/first_words.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/speed.py
