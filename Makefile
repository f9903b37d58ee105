# seq2seq — one venv, pinned CPU torch first (a bare `torch` requirement would pull a CUDA build).
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0
RUN_DIR   ?= runs/default
PORT      ?= 8000
export PYTHONHASHSEED := 0

.PHONY: venv run train evaluate serve test lint bench gpu-check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

## main job: train the default model on the shipped corpus, evaluate on test, serve it
run: venv
	$(BIN)/seq2seq-train hydra.run.dir=$(RUN_DIR)
	$(BIN)/seq2seq-evaluate checkpoint=$(RUN_DIR)/checkpoints/best.pt split=test
	$(BIN)/seq2seq-serve checkpoint=$(RUN_DIR)/checkpoints/best.pt port=$(PORT)

train: venv
	$(BIN)/seq2seq-train hydra.run.dir=$(RUN_DIR)

evaluate: venv
	$(BIN)/seq2seq-evaluate checkpoint=$(RUN_DIR)/checkpoints/best.pt split=test

serve: venv
	$(BIN)/seq2seq-serve checkpoint=$(RUN_DIR)/checkpoints/best.pt port=$(PORT)

lint: venv
	$(BIN)/ruff check .

## tests: lint, then every test (slow end-to-end ones included)
test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m benchmarks.rnn_core
	$(BIN)/python -m benchmarks.search
	$(BIN)/python -m benchmarks.serve
	$(BIN)/python -m benchmarks.ablation

## on a CUDA machine: every CUDA test and the GPU tables (<= 10 min); says so and exits 0 elsewhere
gpu-check: venv
	bash benchmarks/gpu.sh

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
