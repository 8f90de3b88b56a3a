# Two commands on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION := ansible_collections/pixstor/mgmt

.PHONY: serve test test-service test-collection sanity molecule bench system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the pinned dependencies change.
$(VENV)/.serve-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.serve-installed

serve: $(VENV)/.serve-installed
	$(BIN)/pixstor-mgmt init
	$(BIN)/pixstor-mgmt serve

# Debian packages some tests need (btrfs loop mounts, nginx in front of the API, ACL tools,
# faketime for a worker whose clock is wrong).
system-packages:
	@missing=""; \
	command -v mkfs.btrfs >/dev/null || missing="$$missing btrfs-progs"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v setfacl >/dev/null || missing="$$missing acl"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing: the tests that need them will say so"; \
	  else echo "not root: cannot install$$missing; the tests that need them will say so"; fi; \
	fi

# ansible-test sanity and molecule first: pytest's summary line closes the run.
test: $(VENV)/.test-installed system-packages
	$(MAKE) sanity molecule
	$(BIN)/pytest -q tests $(COLLECTION)/tests/unit

sanity: $(VENV)/.test-installed
	tools/ansible-sanity

molecule: $(VENV)/.test-installed
	tools/molecule-all

bench: $(VENV)/.serve-installed
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .cache
