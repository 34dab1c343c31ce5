# soracom.krypton: set-up, demo and tests. Needs root on Debian 12 (bookworm).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

REPO := $(abspath .)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
COLL := $(REPO)/collections/ansible_collections/soracom/krypton
LABCTL := $(REPO)/tests/lab/labctl
PIS ?= 3
ANSIBLE_TEST := $(VENV)/bin/ansible-test
ANSIBLE_TEST_ARGS := --local --python-interpreter $(PY) --color no
# Debian packages the lab and the tests use; the Pis' own packages come from
# the lab's apt repository, which is built from Debian's mirror.
APT_PACKAGES := debootstrap systemd-container iproute2 openssl curl jq \
	mosquitto-clients openssh-client shellcheck apt-utils util-linux chromium

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg

.PHONY: help setup system-packages demo test unit lab-unit sanity lint \
	lab-up lab-down lab-status integration molecule e2e clean release-check build-release bench

help:
	@echo "make demo    bring up the lab with $(PIS) Pis and run playbooks/provision.yml twice"
	@echo "make test    unit tests, sanity, lint, then integration, molecule and end-to-end tests on the lab"
	@echo "make bench   time provision.yml on the lab for BENCH_PIS Pis, write docs/benchmarks.md"
	@echo "make lab-up | lab-down | lab-status"

setup: system-packages $(VENV)/.installed $(HOME)/.ansible/test/cache/get_pip_24_2.py

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# ansible-test downloads get-pip from a host that is unreachable here; it
# uses this cached copy instead (the name follows the pip version that
# ansible-core 2.19 pins).
$(HOME)/.ansible/test/cache/get_pip_24_2.py: tests/ci/get_pip.py
	mkdir -p $(dir $@)
	cp $< $@

demo: setup
	$(LABCTL) up --pis $(PIS)
	$(LABCTL) exec -- $(PY) $(REPO)/tests/e2e/demo.py
	@echo "The lab is still running: see 'make lab-status'; stop it with 'make lab-down'."

unit: setup
	cd $(COLL) && $(ANSIBLE_TEST) units $(ANSIBLE_TEST_ARGS)

# The lab's own components, the playbooks' checks and the benchmark report; no lab needed.
lab-unit: setup
	$(PY) -m pytest -q -p no:cacheprovider $(REPO)/tests/lab $(REPO)/tests/playbooks $(REPO)/tests/bench

# The changelog, the collection tarball installed offline, meta/runtime.yml and the
# execution environment definition; no lab needed.
release-check: setup
	$(PY) -m pytest -q -p no:cacheprovider $(REPO)/tests/release

# The release tarball in build/ and the execution environment's build context in
# build/ee-context (docs/release.md).
build-release: setup
	rm -rf $(REPO)/build/ee-context $(REPO)/build/soracom-krypton-*.tar.gz
	ansible-galaxy collection build --output-path $(REPO)/build $(COLL)
	ansible-builder create -f $(REPO)/ee/execution-environment.yml \
		--context $(REPO)/build/ee-context --output-filename Containerfile

sanity: setup
	cd $(COLL) && $(ANSIBLE_TEST) sanity $(ANSIBLE_TEST_ARGS)

lint: setup
	ANSIBLE_COLLECTIONS_PATH=$(REPO)/collections $(VENV)/bin/ansible-lint --offline --profile production

lab-up: setup
	$(LABCTL) up --pis $(PIS)

lab-down:
	$(LABCTL) down

lab-status:
	$(LABCTL) status

# Needs a running lab (make lab-up).
integration:
	$(LABCTL) exec -- bash -c 'cd $(COLL) && $(ANSIBLE_TEST) integration $(ANSIBLE_TEST_ARGS)'

# Needs a running lab (make lab-up). Both scenarios leave the lab as labctl up left it.
molecule:
	$(LABCTL) exec -- bash -c 'cd $(COLL) && molecule test --all'

# Needs a running lab (make lab-up).
e2e:
	$(LABCTL) exec -- $(PY) -m pytest -q -p no:cacheprovider $(REPO)/tests/e2e

test: setup
	$(MAKE) unit lab-unit release-check sanity lint
	rc=0; { $(LABCTL) up --pis $(PIS) && $(MAKE) integration molecule e2e; } || rc=$$?; \
	$(LABCTL) down; exit $$rc

# Not part of make test: replaces the lab of KRYPTON_LAB_ID with one per fleet
# size in BENCH_PIS, writes docs/benchmarks.md and docs/benchmarks.svg, and
# stops the lab at the end.
BENCH_PIS ?= 1 5 20
bench: setup
	$(PY) $(REPO)/tests/bench/bench.py --pis $(BENCH_PIS)

clean: lab-down
	rm -rf $(COLL)/tests/output
