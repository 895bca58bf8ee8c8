# hubchaos — see README.md. Every target installs what it needs (Debian packages, the pinned
# Python/npm components) and leaves nothing running.

CARGO ?= cargo
# One run id for every scenario of one `make` invocation: runs/<id>/<scenario>/.
HUBCHAOS_RUN_GROUP ?= $(shell date -u +%Y%m%dT%H%M%SZ)-make
export HUBCHAOS_RUN_GROUP
NEXTEST_PROFILE ?= ci
HUBCHAOS = $(CARGO) run --quiet -p hubchaos --

.PHONY: test test-chaos unit lint soak deps doctor env sweep bench report

# soak: how long, and an optional baseline soak.json to compare with (BASELINE=path).
DURATION ?= 30m
BASELINE ?=

## test: unit tests + every local scenario (what CI runs), then the table of the run.
test: deps lint
	$(CARGO) nextest run --workspace --profile $(NEXTEST_PROFILE); status=$$?; \
	  $(HUBCHAOS) report $(HUBCHAOS_RUN_GROUP) || true; exit $$status

## lint: formatting (rustfmt.toml) and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings

## test-chaos: every chaos scenario on the default (local) backend, then the table.
test-chaos: deps
	$(CARGO) nextest run -p hubchaos-suites --test scenarios --profile $(NEXTEST_PROFILE) --run-ignored all; status=$$?; \
	  $(HUBCHAOS) report $(HUBCHAOS_RUN_GROUP) || true; exit $$status

## unit: the harness's own tests only (no real components).
unit: deps
	$(CARGO) nextest run --workspace --profile $(NEXTEST_PROFILE) -E 'not binary(scenarios)'

## deps: Debian packages and tools the harness needs (idempotent; root installs, others are told).
## docker.io is installed with a policy-rc.d guard so the package never starts a system dockerd.
deps:
	@missing=""; \
	  command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	  command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else echo "missing Debian packages:$$missing — run: sudo apt-get install$$missing" >&2; exit 2; fi; \
	  fi
	@missing=""; \
	  { command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ]; } || missing="$$missing docker.io"; \
	  dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	  [ -x /usr/sbin/mkfs.ext4 ] || command -v mkfs.ext4 >/dev/null 2>&1 || missing="$$missing e2fsprogs"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      guard=""; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; guard=1; }; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
	      [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
	    else echo "node scenarios need:$$missing (sudo apt-get install --no-install-recommends$$missing); they will be skipped" >&2; fi; \
	  fi
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest

## soak: spawn churn for DURATION (default 30m); slopes per window; with BASELINE=soak.json,
## fails when a slope exceeds 1.1x the baseline's beyond noise. Writes soak.json in the run dir.
soak: deps
	$(CARGO) run --release --quiet -p hubchaos -- soak --duration $(DURATION) $(if $(BASELINE),--baseline $(BASELINE))

doctor:
	$(HUBCHAOS) doctor

env:
	$(HUBCHAOS) env

## sweep: end what killed runs left behind (processes, mounts), by their markers.
sweep:
	$(HUBCHAOS) sweep

## bench: the recording proxy against a direct connection.
bench:
	$(CARGO) run --release --quiet -p hubchaos -- bench

report:
	$(HUBCHAOS) report
