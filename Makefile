# video-stats: every workflow is a target here. `make help` lists them.
#
#   make deploy                 # local default: moto server + stream engine, no AWS account
#   make deploy TARGET=aws      # real AWS, with your credentials (an explicit choice)
#   make test                   # everything CI runs
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

TARGET     ?= local
LOCAL_PORT ?= 4566
# The local stream: open shards per table, and seconds until a shard closes and a child shard
# continues it (AWS: a few hours; 0 = never). Applied to a running endpoint, too.
LOCAL_STREAM_PARTITIONS      ?= 4
LOCAL_SHARD_ROTATION_SECONDS ?= 45
# The local target's batching window: 5 s, so a load test's summaries settle in seconds. The
# root module's default (300 s) is the production cost/freshness choice (docs/design.md §6);
# TF_VAR is Terraform's weakest source, so a stream_mapping in your *.tfvars still wins.
LOCAL_BATCHING_WINDOW_SECONDS ?= 5
ARGS       ?=
PYTHON     ?= python3

VENV         := .venv
PY           := $(VENV)/bin/python
VENV_STAMP   := $(VENV)/.installed
ENDPOINT_DIR := .local/endpoint
DEPLOY_DIR   := .local/deploy/$(TARGET)
OUTPUTS      := $(DEPLOY_DIR)/outputs.json
ZIP          := build/lambda.zip
# The deployment root (provider, state, the module with your settings): deploy/README.md.
DEPLOY_ROOT  := deploy
TF           := scripts/tf $(TARGET) -chdir=$(DEPLOY_ROOT)

ifeq ($(filter $(TARGET),local aws),)
$(error TARGET must be local or aws, not '$(TARGET)')
endif

# The local target talks to the endpoint recorded by `make local-up`; the tools
# get the deployment's environment (endpoint, dummy credentials, table name).
ifeq ($(TARGET),local)
LOCAL_ENV = LOCAL_ENDPOINT_URL="$$($(PY) scripts/deploy_env.py endpoint-url --state-dir $(ENDPOINT_DIR))" TF_VAR_deletion_protection=false TF_VAR_stream_mapping='{maximum_batching_window_in_seconds=$(LOCAL_BATCHING_WINDOW_SECONDS)}'
else
LOCAL_ENV =
endif
TOOL_ENV = eval "$$($(PY) scripts/deploy_env.py exports --target $(TARGET) --state-dir $(ENDPOINT_DIR) --outputs $(OUTPUTS))";

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# --- toolchain -------------------------------------------------------------

# The pinned tools, then this project editable (pyproject.toml): the tools (scripts/) and the
# domain code (lambda_src/) import each other by package name, with no PYTHONPATH.
$(VENV_STAMP): requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python >= 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Create the virtual environment: the pinned tools, then this project (editable)

# checkov pins its own versions of boto3 and friends, so it lives in a venv of its own.
CHECKOV_STAMP := .venv-checkov/.installed
$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

# --- packaging -------------------------------------------------------------

$(ZIP): $(VENV_STAMP) lambda_src/requirements.txt scripts/build_lambda_zip.py $(shell find lambda_src -name '*.py' -not -path '*/__pycache__/*')
	$(PY) scripts/build_lambda_zip.py --source lambda_src --requirements lambda_src/requirements.txt --output $@

.PHONY: package
package: $(ZIP) ## Build the deployment zip (byte-identical for identical source)

# --- local endpoint --------------------------------------------------------

.PHONY: local-up
local-up: $(VENV_STAMP) ## Start the local endpoint if not running (LOCAL_STREAM_PARTITIONS=4 LOCAL_SHARD_ROTATION_SECONDS=45)
	@$(PY) -m localcloud up --state-dir $(ENDPOINT_DIR) --port $(LOCAL_PORT) \
	  --stream-partitions $(LOCAL_STREAM_PARTITIONS) --shard-rotation-seconds $(LOCAL_SHARD_ROTATION_SECONDS)

.PHONY: local-down
local-down: ## Stop the local endpoint (its data is lost) and forget the local deployment's state
	@if [ -x $(PY) ]; then $(PY) -m localcloud down --state-dir $(ENDPOINT_DIR); fi
	@rm -rf .local/deploy/local terraform.tfstate.d/local

# --- deployment ------------------------------------------------------------

# Two configurations: the deployment root, and the module itself for terraform test.
$(DEPLOY_ROOT)/.terraform/.initialized: $(DEPLOY_ROOT)/.terraform.lock.hcl $(DEPLOY_ROOT)/*.tf versions.tf modules/*/versions.tf
	scripts/tf none -chdir=$(DEPLOY_ROOT) init -input=false -lockfile=readonly >/dev/null
	@touch $@
.terraform/.initialized: .terraform.lock.hcl versions.tf modules/*/versions.tf $(wildcard tests/*.tftest.hcl examples/*/*.tf)
	scripts/tf none init -input=false -lockfile=readonly >/dev/null
	@touch $@

.PHONY: init
init: $(DEPLOY_ROOT)/.terraform/.initialized .terraform/.initialized ## terraform init (uses a provider mirror when the machine has one)

ifeq ($(TARGET),local)
deploy plan: local-up
endif
.PHONY: deploy
deploy: package init ## Deploy: TARGET=local (default) or TARGET=aws
	@$(call require_aws_choice)
	@$(call refuse_top_level_settings)
	$(LOCAL_ENV) $(TF) apply -auto-approve -input=false
	@mkdir -p $(DEPLOY_DIR)
	@$(LOCAL_ENV) $(TF) output -json > $(OUTPUTS)

.PHONY: plan
plan: package init $(CHECKOV_STAMP) ## Review a plan: summary, replacements called out, JSON, checkov scan
	@$(call refuse_top_level_settings)
	@mkdir -p build/plan
	$(LOCAL_ENV) $(TF) plan -input=false -out=$(CURDIR)/build/plan/tfplan
	@$(LOCAL_ENV) $(TF) show -json $(CURDIR)/build/plan/tfplan > build/plan/plan.json
	$(PY) -m vstats.plan_review build/plan/plan.json --output-dir build/plan $(ARGS)

.PHONY: destroy
destroy: init ## Remove the deployment of TARGET
	@$(call require_aws_choice)
	@$(call refuse_top_level_settings)
	$(LOCAL_ENV) $(TF) destroy -auto-approve -input=false
	@rm -rf $(DEPLOY_DIR)

.PHONY: env
env: ## Print shell exports for the local deployment: eval "$(make -s env)"
	@$(PY) scripts/deploy_env.py exports --target local --state-dir $(ENDPOINT_DIR) --outputs .local/deploy/local/outputs.json

# --- operator tools (extra options through ARGS="...") -----------------------

.PHONY: loadtest summary stats reconcile
loadtest: ## Write traffic and verify the summaries (ARGS="--events 5000 --rate 200")
	@$(TOOL_ENV) $(PY) -m vstats.loadtest $(ARGS)
summary: ## Live view of the video and user summaries (ARGS="--once --top 10")
	@$(TOOL_ENV) $(PY) -m vstats.summary $(ARGS)
stats: ## Access patterns through GSI1 (ARGS="video 3 likes")
	@$(TOOL_ENV) $(PY) -m vstats.access_patterns $(ARGS)
reconcile: ## Recount every summary from the base items (ARGS="--repair")
	@$(TOOL_ENV) $(PY) -m vstats.reconcile $(ARGS)

.PHONY: status redrive
status: ## Mappings, metrics, failure queues and alarms at a glance (ARGS="--minutes 60 --json")
	@$(TOOL_ENV) $(PY) -m vstats.status $(ARGS)
redrive: ## Replay the batches the on-failure queues hold, exactly (ARGS="--dry-run --json")
	@$(TOOL_ENV) $(PY) -m vstats.redrive $(ARGS)

# --- quality ---------------------------------------------------------------

.PHONY: lint
lint: $(VENV_STAMP) ## ruff, ruff format, terraform fmt, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	scripts/tf none fmt -check -recursive
	$(VENV)/bin/mypy

.PHONY: tf-test
tf-test: package init ## terraform validate + terraform test (mock provider, no endpoint)
	scripts/tf none validate
	scripts/tf none -chdir=$(DEPLOY_ROOT) validate
	scripts/tf none test

# pytest-xdist: two workers (the machine's cores); the integration tests share one worker and
# one deployed stack (tests/conftest.py groups them).
PYTEST_WORKERS ?= 2

.PHONY: test test-fast
test: lint tf-test $(CHECKOV_STAMP) ## Everything CI runs: lint, terraform test, unit and integration tests
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: lint ## The inner loop: lint and every test that needs no endpoint or deployment
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) -m "not slow"

.PHONY: bench-handler bench-marks bench
bench-handler: $(VENV_STAMP) ## Parse-and-merge throughput of the handler code
	@$(PY) -m benchmark handler $(ARGS)
bench-marks: $(VENV_STAMP) ## A summary item's bytes and WRU per update (design §6); ARGS=--partitions 16 64
	@$(PY) -m benchmark marks $(ARGS)
bench: package $(VENV_STAMP) ## Reference design vs ours, full bill (build/bench/); ARGS=--strict fails on a missed target
	@$(PY) -m benchmark designs --batching-window $(LOCAL_BATCHING_WINDOW_SECONDS) $(ARGS)

.PHONY: clean
clean: ## Remove build outputs (not the venv or deployments)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

# Terraform runs in deploy/ now: settings or a backend block left at the top (where they
# worked before deploy/ existed) would be ignored, and a plan without them could replace the
# stack or miss its state (deploy/README.md, "Upgrading").
define refuse_top_level_settings
	found="$$(ls terraform.tfvars terraform.tfvars.json *.auto.tfvars *.auto.tfvars.json 2>/dev/null; grep -lE '^[[:space:]]*backend[[:space:]]+"' *.tf 2>/dev/null)" || true; \
	if [ -n "$$found" ]; then \
	  echo "error: $$(echo $$found) at the repository's top would be ignored: move the settings or backend block into $(DEPLOY_ROOT)/ (see $(DEPLOY_ROOT)/README.md, 'Upgrading')" >&2; exit 1; \
	fi
endef

define require_aws_choice
	if [ "$(TARGET)" = aws ]; then \
	  $(PY) -c 'import boto3,sys; sys.exit(0 if boto3.Session().get_credentials() else 1)' \
	    || { echo "error: TARGET=aws but no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)" >&2; exit 1; }; \
	fi
endef
