# The one entry point. Each target is one line that calls a script or a tool.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: help venv test unit integration e2e template lint local deploy delete drill bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv with every development dependency

$(VENV)/.installed: requirements-dev.txt
	bash scripts/bootstrap.sh $(VENV)

local: venv ## run both regions, replication, health checks and the front door on this machine
	$(PY) -m localcloud $(ARGS)

test: venv ## every check a reviewer would run: lint, template, unit, integration, end-to-end
	bash scripts/test.sh

lint: venv ## ruff and mypy --strict over functions/ and localcloud/
	bash scripts/lint.sh

template: venv ## cfn-lint, sam validate --lint, sam build, and the template tests
	bash scripts/check_template.sh

deploy: venv ## sam build once, deploy the primary region then the other (see docs/deploy.md)
	bash scripts/deploy.sh

delete: venv ## tear both regions' stacks down
	bash scripts/delete.sh

drill: venv ## failover drill against the local stack (ARGS="--region us-east-1 --mode invert|outage --hold 15")
	$(PY) -m drill $(ARGS)

bench: venv ## latency, fan-out, cold start and cost per message (ARGS="--quick" or benchmark names)
	$(PY) -m bench $(ARGS)

clean: ## remove build output and local runtime state
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
