# The two commands: `make run` (serve the example) and `make test` (the whole suite).
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/banking77
PORT ?= 8000

.PHONY: run test test-templates bench lint train clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(EXAMPLE)/artifacts/model.skops: $(STAMP) $(EXAMPLE)/data.py $(EXAMPLE)/train.py
	cd $(EXAMPLE) && ../../$(BIN)/python train.py

train: $(EXAMPLE)/artifacts/model.skops

run: train
	@echo ""
	@echo "Serving the banking77 intent router on http://127.0.0.1:$(PORT). Call it with:"
	@echo "  curl -s localhost:$(PORT)/predict -H 'content-type: application/json' -d '{\"text\": \"I still have not received my card\"}'"
	@echo "The dashboard: http://127.0.0.1:$(PORT)/dashboard  (send outcomes to POST /feedback, see docs/feedback.md)"
	@echo "Stop it with Ctrl-C."
	@echo ""
	$(BIN)/shipway serve $(EXAMPLE) --port $(PORT)

test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	$(BIN)/python -m pytest -q

# Generated projects for the heavy ML libraries (PyTorch, sentence embeddings, XGBoost, LightGBM):
# too slow for every CI run, so a target of their own.
test-templates: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,xgboost,lightgbm,pytorch,onnx,sentence-embeddings]"
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow_templates tests/test_templates_projects.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples tools
	$(BIN)/ruff format --check src tests bench examples tools
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) train
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(EXAMPLE)/artifacts $(EXAMPLE)/build .shipway
