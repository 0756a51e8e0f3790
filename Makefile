# The one entry point. Each target is one line that calls a script or a tool.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: help venv test unit integration e2e template lint local deploy delete drill bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv with every development dependency

$(VENV)/.installed: requirements-dev.txt
	bash scripts/bootstrap.sh $(VENV)

local: venv ## run both regions, replication, health checks and the front door on this machine
	$(PY) -m localcloud $(ARGS)

test: venv ## every check a reviewer would run: lint, template, unit, integration, end-to-end
	bash scripts/test.sh

unit: venv ## the unit tests (domain logic with fakes, no network)
	$(PY) -m pytest tests/unit $(ARGS)

integration: venv ## the handlers through boto3 against a moto server on 127.0.0.1
	$(PY) -m pytest tests/integration $(ARGS)

e2e: venv ## end to end: the local two-region stack over real HTTP and WebSockets
	$(PY) -m pytest tests/e2e $(ARGS)

lint: venv ## ruff over everything, mypy --strict over functions/, localcloud/, drill/ and bench/, the import rules
	bash scripts/lint.sh

template: venv ## cfn-lint, sam validate --lint, sam build, and the template tests
	bash scripts/check_template.sh

deploy: venv ## build, deploy both regions, upload the chat page, print its URL (ARGS=--dry-run: print the AWS calls)
	bash scripts/deploy.sh $(ARGS)

delete: venv ## tear both regions down (any state, primary first), says what it leaves (ARGS=--dry-run: say what would go)
	bash scripts/delete.sh $(ARGS)

drill: venv ## failover drill: a region taken out by a named fault (ARGS="--region us-east-1 --mode invert|kill|dynamodb|lambda --hold 15")
	$(PY) -m drill $(ARGS)

bench: venv ## latency, fan-out, cold start, cost, idle cost, capacity (ARGS="--quick" or benchmark names)
	$(PY) -m bench $(ARGS)

clean: ## remove build output and local runtime state
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
