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
	$(BIN)/archivist ingest data-samples/docs --index $(DATA)/index
	$(BIN)/archivist stats --index $(DATA)/index
	$(BIN)/archivist users demo
	$(BIN)/archivist serve --index $(DATA)/index $(SERVE_ARGS)

test: setup
	bash .ci/offline $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/ingest_speed.py
	$(BIN)/python bench/answers.py
	$(BIN)/python bench/reindex_speed.py
	$(BIN)/python bench/first_words.py
