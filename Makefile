# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
WORKDIR ?= runs/shapes
CONFIG ?= configs/shapes.yaml

.PHONY: run test install clean compare-encoders

$(BIN)/sagan-tf: requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

install: $(BIN)/sagan-tf

# Test captions for the demo grid; the first six are held-out (shape, colour)
# pairs that never appear in training.
DEMO_CAPTIONS = \
	"A small purple circle in the top left corner on a yellow background." \
	"On a blue background sits a large orange square in the center." \
	"A big cyan triangle at the bottom on a black backdrop." \
	"The canvas is white and on the right sits a medium red diamond." \
	"A large white star in the middle on a red background." \
	"A green plus sign at the top right on a pink background." \
	"A small yellow circle at the lower left on a blue background." \
	"On a yellow background sits a big blue circle in the center."

# The main job on the built-in captioned-shapes data set: data, encoder,
# GAN, a grid of generated images, evaluation and both exports.
run: install
	$(BIN)/sagan-tf data build --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/sagan-tf data show --workdir $(WORKDIR) --out $(WORKDIR)/contact_sheet.png
	$(BIN)/sagan-tf train-encoder --workdir $(WORKDIR) --quiet
	$(BIN)/sagan-tf train-gan --workdir $(WORKDIR)
	$(BIN)/sagan-tf generate --workdir $(WORKDIR) --n 8 --seed 0 --out $(WORKDIR)/demo_grid.png $(DEMO_CAPTIONS)
	$(BIN)/sagan-tf train-classifier --workdir $(WORKDIR) --quiet
	$(BIN)/sagan-tf evaluate --workdir $(WORKDIR) --quiet --out $(WORKDIR)/evaluation/report.json
	$(BIN)/sagan-tf export --workdir $(WORKDIR) --format savedmodel --out $(WORKDIR)/export/text2image
	$(BIN)/sagan-tf export --workdir $(WORKDIR) --format tflite --quantize dynamic_int8

# After `make run`: the demo's GAN on other text encoders, judged by the
# demo's domain classifier (README, "Encoder comparison"). GAN_SEED=n
# repeats it with another training seed (noise and data order) in workdirs
# ending in _seed<n>; list self_attention in ENCODERS to repeat the demo too.
ENCODERS ?= lstm_last mean
GAN_SEED ?= 0
SEED_SUFFIX := $(if $(filter-out 0,$(GAN_SEED)),_seed$(GAN_SEED))
compare-encoders: install
	for kind in $(ENCODERS); do \
	  workdir=$(WORKDIR)_$${kind}$(SEED_SUFFIX); \
	  $(BIN)/sagan-tf train-encoder --config $(CONFIG) --workdir $$workdir --quiet \
	      --set encoder.kind=$$kind --set data.cache_dir=$(WORKDIR)/data && \
	  $(BIN)/sagan-tf train-gan --workdir $$workdir --quiet --set train.seed=$(GAN_SEED) && \
	  $(BIN)/sagan-tf evaluate --workdir $$workdir --quiet \
	      --classifier $(WORKDIR)/classifier/classifier.keras \
	      --out $$workdir/evaluation/report.json || exit 1; \
	done

test: install
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) runs
