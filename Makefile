# Two commands on a fresh machine:
#   make up    - set up, then `pulumi up` the demo stack (or, with no Pulumi CLI or AWS
#                credentials here, the offline plan of it)
#   make test  - set up, then run every offline test
VENV ?= .venv
SECRETS_PROVIDER ?=
PY := $(VENV)/bin/python
STACK ?= dev
# Exit 1: the account would refuse the stack (quota, CIDRs); 3: AWS checks skipped, said why.
PREFLIGHT := $(PY) -m components preflight --stack $(STACK)
# A stack that leaves publicAccessCidrs unset (a fresh clone's) gets the deployer's own
# address from `make up`. The offline plan has none to find, so it plans 192.0.2.1/32: a
# documentation address (RFC 5737) that no client has, so it opens the endpoint to no one,
# and that preflight refuses for a real `up`. Only endpointPublicAccess false (Pulumi writes
# "false") makes the endpoint private; true still needs CIDRs.
PLAN_ADDRESS := 192.0.2.1/32
PLAN_CIDRS := $(if $(shell grep -sE '^ *eks-gpu-sharing:(publicAccessCidrs:|endpointPublicAccess: *("false"|'\''false'\''|false) *(\#.*)?$$)' Pulumi.$(STACK).yaml),,--config 'publicAccessCidrs=["$(PLAN_ADDRESS)"]')
PLAN := $(PY) -m components plan --stack $(STACK) $(PLAN_CIDRS) --manifests out/manifests --json out/plan.json

# Every target that reads or writes Pulumi state (up, verify, destroy) starts with this, so
# they all decrypt the stack's secrets alike. Pulumi takes PULUMI_CONFIG_PASSPHRASE when it
# is set (even empty), else the file PULUMI_CONFIG_PASSPHRASE_FILE names, else it prompts,
# and fails when there is no terminal (pulumi/pulumi pkg/secrets/passphrase/manager.go,
# readPassphrase). With neither set, or an empty one, the passphrase is empty: say so.
# A stack whose secrets go to a key service needs no passphrase.
SECRETS_IN_KMS := { [ -n "$(SECRETS_PROVIDER)" ] || grep -qsE '^secretsprovider: *(awskms|azurekeyvault|gcpkms|hashivault)://' Pulumi.$(STACK).yaml; }
STATE := if [ -n "$${PULUMI_CONFIG_PASSPHRASE+set}" ] || [ -z "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then \
	  if [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] && ! $(SECRETS_IN_KMS); then \
	    echo "warning: PULUMI_CONFIG_PASSPHRASE is empty: using an empty passphrase for stack $(STACK)'s secrets (its kubeconfig)" >&2; \
	  fi; \
	  export PULUMI_CONFIG_PASSPHRASE="$${PULUMI_CONFIG_PASSPHRASE:-}"; \
	fi;
# `up` creates state: it refuses an empty passphrase, which protects the stack's secrets
# (its kubeconfig) with nothing, unless they go to a KMS key instead
# (SECRETS_PROVIDER=awskms://alias/<name>?region=<region>, used by `pulumi stack select
# --create --secrets-provider`: pulumi/pulumi pkg/cmd/pulumi/stack/stack_select.go) or the
# stack file already names such a secrets provider.
NEW_STATE := if ! $(SECRETS_IN_KMS) \
	    && [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] \
	    && { [ -n "$${PULUMI_CONFIG_PASSPHRASE+set}" ] || [ ! -s "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; }; then \
	  echo "error: make up will not create stack $(STACK)'s state with an empty passphrase: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or SECRETS_PROVIDER=awskms://alias/<key>?region=<region>" >&2; \
	  exit 2; \
	fi;
# With publicAccessCidrs unset and the endpoint public, open the endpoint to this machine's
# public address alone, and say so (checkip.amazonaws.com answers with the caller's address).
OWN_ADDRESS := if ! pulumi config get eks-gpu-sharing:publicAccessCidrs --stack $(STACK) >/dev/null 2>&1 \
	    && [ "$$(pulumi config get eks-gpu-sharing:endpointPublicAccess --stack $(STACK) 2>/dev/null)" != false ]; then \
	  address=$$(curl -fsS --max-time 10 https://checkip.amazonaws.com | tr -d '[:space:]'); \
	  case "$$address" in \
	    ""|*[!0-9.]*) echo "error: publicAccessCidrs is unset and this machine's public address could not be found; set it: pulumi config set --stack $(STACK) eks-gpu-sharing:publicAccessCidrs '[\"<your address>/32\"]'" >&2; exit 2 ;; \
	  esac; \
	  pulumi config set --stack $(STACK) eks-gpu-sharing:publicAccessCidrs "[\"$$address/32\"]" || exit 2; \
	  echo "publicAccessCidrs was unset: the API endpoint of stack $(STACK) is open to this machine's address alone, $$address/32 (pulumi config set eks-gpu-sharing:publicAccessCidrs to change it)" >&2; \
	fi;
NEEDS_PULUMI = command -v pulumi >/dev/null || { \
	  echo "make $@ needs the Pulumi CLI: https://www.pulumi.com/docs/iac/download-install/" >&2; exit 2; };

.PHONY: up plan preflight verify destroy test lint mutate

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

up: $(VENV)/.installed
	@if command -v pulumi >/dev/null && command -v aws >/dev/null \
	    && aws sts get-caller-identity >/dev/null 2>&1; then \
	  $(NEW_STATE) $(STATE) \
	  pulumi stack select $(STACK) --create $(if $(SECRETS_PROVIDER),--secrets-provider '$(SECRETS_PROVIDER)') || exit 2; \
	  $(OWN_ADDRESS) \
	  { $(PREFLIGHT) || [ $$? -eq 3 ]; } && pulumi up --stack $(STACK) --yes; \
	else \
	  echo "No Pulumi CLI or AWS credentials here: showing the offline plan of stack $(STACK)." >&2; \
	  $(PLAN); \
	fi

plan: $(VENV)/.installed
	$(PLAN)

# 3 (the AWS checks skipped, the reason printed) is no failure, as in `make up`.
preflight: $(VENV)/.installed
	@$(PREFLIGHT) || [ $$? -eq 3 ]

verify: $(VENV)/.installed
	@$(NEEDS_PULUMI) $(STATE) $(PY) -m components verify --stack $(STACK)

destroy:
	@$(NEEDS_PULUMI) $(STATE) pulumi destroy --stack $(STACK) --yes

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
