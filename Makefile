# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
WORKDIR ?= runs/shapes
CONFIG ?= configs/shapes.yaml

.PHONY: run test install clean

$(BIN)/sagan-tf: requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

install: $(BIN)/sagan-tf

# The main job on the built-in captioned-shapes data set.
run: install
	$(BIN)/sagan-tf data build --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/sagan-tf data show --workdir $(WORKDIR) --out $(WORKDIR)/contact_sheet.png

test: install
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) runs
