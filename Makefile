# The two commands of the README:
#   make demo   set up, ingest data-samples/, then search it (the web app comes with its issue)
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
	$(BIN)/archivist search --index $(DATA)/index "How many days of paid vacation do new employees get?" -k 3

test: setup
	bash .ci/offline $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/retrieval.py
