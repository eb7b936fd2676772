# Two commands on a fresh machine:
#   make up    - set up, then `pulumi up` the demo stack (or, with no Pulumi CLI or AWS
#                credentials here, the offline plan of it)
#   make test  - set up, then run every offline test
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: up plan verify destroy test lint mutate

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

up: $(VENV)/.installed
	@if command -v pulumi >/dev/null && command -v aws >/dev/null \
	    && aws sts get-caller-identity >/dev/null 2>&1; then \
	  if [ -z "$${PULUMI_CONFIG_PASSPHRASE+set}" ]; then \
	    echo "warning: PULUMI_CONFIG_PASSPHRASE is unset; using an empty passphrase for the local state" >&2; \
	    export PULUMI_CONFIG_PASSPHRASE=""; \
	  fi; \
	  pulumi stack select $(STACK) --create && pulumi up --stack $(STACK) --yes; \
	else \
	  echo "No Pulumi CLI or AWS credentials here: showing the offline plan of stack $(STACK)." >&2; \
	  $(PY) -m components plan --stack $(STACK) --manifests out/manifests --json out/plan.json; \
	fi

plan: $(VENV)/.installed
	$(PY) -m components plan --stack $(STACK) --manifests out/manifests --json out/plan.json

verify: $(VENV)/.installed
	$(PY) -m components verify --stack $(STACK)

destroy:
	pulumi destroy --stack $(STACK) --yes

lint: $(VENV)/.installed
	$(PY) -m ruff check components tests policy examples provider __main__.py
	$(PY) -m mypy components policy provider/eks_gpu_sharing_provider.py

test: $(VENV)/.installed lint
	$(PY) -m pytest

# Mutation testing of the library (docs/testing.md): slow, not part of `make test` or CI.
# Results are kept in mutants/ (delete it to start over); the counts end up in
# mutants/mutmut-cicd-stats.json and the survivors are listed. MUTATE_JOBS workers (default 1).
MUTATE_JOBS ?= 1
mutate: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,mutate]'
	nice -n 10 $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS)
	$(VENV)/bin/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json
	$(VENV)/bin/mutmut results
