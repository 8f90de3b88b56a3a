# Two commands on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION := ansible_collections/pixstor/mgmt

.PHONY: serve test test-service test-collection sanity matrix collection-lint molecule bench system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the pinned dependencies change. The service and ansible-core (pinned, for
# playbooks against it: see README, "Provisioning as code").
$(VENV)/.serve-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[ansible]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.serve-installed

serve: $(VENV)/.serve-installed
	$(BIN)/pixstor-mgmt init
	@# One shell: it prints its own pid, then becomes the server (exec), so that pid is the server's.
	@echo "make serve: stop the server with Ctrl-C here, or from another shell: kill $$$$" \
	      "(it finishes requests and jobs in flight first, up to server.grace seconds)"; \
	exec $(BIN)/pixstor-mgmt serve

# Debian packages some tests need (btrfs loop mounts, nginx in front of the API, ACL tools,
# faketime for a worker whose clock is wrong, and the file servers the shares are checked with:
# Samba and its client, nfs-ganesha with its VFS backend and the libnfs client, the kernel's
# exportfs; headless Chromium and its WebDriver for the admin pages' browser tests). Without
# recommends: nothing of them starts by itself.
system-packages:
	@missing=""; \
	command -v mkfs.btrfs >/dev/null || missing="$$missing btrfs-progs"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v setfacl >/dev/null || missing="$$missing acl"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	command -v smbd >/dev/null || [ -x /usr/sbin/smbd ] || missing="$$missing samba"; \
	command -v smbclient >/dev/null || missing="$$missing smbclient"; \
	command -v ganesha.nfsd >/dev/null || missing="$$missing nfs-ganesha"; \
	ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 || missing="$$missing nfs-ganesha-vfs"; \
	command -v nfs-ls >/dev/null || missing="$$missing libnfs-utils"; \
	command -v exportfs >/dev/null || [ -x /usr/sbin/exportfs ] || missing="$$missing nfs-kernel-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	       $$missing >/dev/null) \
	      || echo "could not install$$missing: the tests that need them will say so"; \
	  else echo "not root: cannot install$$missing; the tests that need them will say so"; fi; \
	fi

# The collection's checks first (ansible-test sanity and units on every tested ansible-core,
# the publishing lints, molecule): pytest's summary line closes the run. Four test processes,
# a test file each at a time (its module-wide servers shared): most tests wait on servers,
# jobs and file servers, not on the CPU (one process: ~15 minutes; four: ~5).
PYTEST_PROCESSES ?= 4
test: $(VENV)/.test-installed system-packages
	$(MAKE) matrix collection-lint molecule
	$(BIN)/pytest -q -n $(PYTEST_PROCESSES) --dist loadfile tests $(COLLECTION)/tests/unit

# ansible-test sanity on .venv's ansible-core only.
sanity: $(VENV)/.test-installed
	tools/ansible-sanity

# ansible-test sanity and units on ansible-core 2.16-2.19 (tools/ansible-versions).
matrix:
	tools/ansible-matrix

# ansible-lint (production profile), antsibull-docs and antsibull-changelog lint, pinned.
collection-lint:
	tools/collection-lint

molecule: $(VENV)/.test-installed
	tools/molecule-all

# The three benchmarks of bench/README.md (minutes each; results and plots in bench/results/),
# then the three micro-benchmarks. Each starts its own servers and baseline.
$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[ansible,bench]'
	touch $@ $(VENV)/.serve-installed

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench.api --postgres
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.ansible
	$(BIN)/python bench/job_pickup.py
	$(BIN)/python bench/list_queries.py
	$(BIN)/python -m bench.switches

clean:
	rm -rf $(VENV) var .cache
