# The two commands of the README:
#   make demo   set up, ingest data-samples/, then search it and ask it (the web app comes with its issue)
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
	$(BIN)/archivist ask --index $(DATA)/index "How many days of paid annual leave does an employee get?"

test: setup
	bash .ci/offline $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/ingest_speed.py
	$(BIN)/python bench/answers.py
