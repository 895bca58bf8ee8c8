# hubchaos — see README.md. Every target installs what it needs (Debian packages, the pinned
# Python/npm components) and leaves nothing running.

CARGO ?= cargo
# One run id for every scenario of one `make` invocation: runs/<id>/<scenario>/.
HUBCHAOS_RUN_GROUP ?= $(shell date -u +%Y%m%dT%H%M%SZ)-make
export HUBCHAOS_RUN_GROUP
NEXTEST_PROFILE ?= ci
HUBCHAOS = $(CARGO) run --quiet -p hubchaos --

.PHONY: test test-kind test-chaos unit lint lint-workflows soak deps doctor env sweep bench report kind-image stack-images cluster cluster-down

# soak: how long, an optional baseline soak.json to compare with (BASELINE=path), and where to
# write this run's soak.json to be the next baseline (SAVE_BASELINE=path).
DURATION ?= 30m
BASELINE ?=
SAVE_BASELINE ?=

## test: unit tests + every local scenario (what CI runs); then, when the kind node image is
## cached (`make kind-image`), the kind scenarios on a cluster brought up for them (or the one
## `make cluster` left up) and taken down after; then the table of the run. The kind scenarios
## run after the local ones: an idle cluster's CPU would disturb the local scenarios' timings.
test: deps lint
	$(CARGO) nextest run --workspace --profile $(NEXTEST_PROFILE) -E 'not test(/^kind::/)'; status=$$?; \
	  $(MAKE) --no-print-directory test-kind || status=1; \
	  $(HUBCHAOS) report $(HUBCHAOS_RUN_GROUP) || true; exit $$status

## CHART=PATH: the jupyterhub chart the kind scenarios install instead of the reference one (a
## z2jh checkout: its root or its jupyterhub/ directory), as `hubchaos run --chart
## jupyterhub=PATH`; for test, test-kind and test-chaos BACKEND=kind. A path with no chart: exit 2.
CHART ?=
CHART_CHECK = if [ -n "$(CHART)" ] && [ ! -f "$(CHART)/Chart.yaml" ] && [ ! -f "$(CHART)/jupyterhub/Chart.yaml" ]; then \
	  echo "CHART=$(CHART): no jupyterhub chart there (no Chart.yaml in it or in its jupyterhub/): give a z2jh checkout (its root or its jupyterhub/ directory)" >&2; exit 2; fi
CHART_ENV = $(if $(CHART),HUBCHAOS_CHART_JUPYTERHUB='$(abspath $(CHART))')

## test-kind: the kind scenarios (skipped, with the reason, when the node image is not cached);
## the long ones (the kind controls beyond the first) only with KIND_IGNORED='--run-ignored all'.
KIND_IGNORED ?=
test-kind:
	@$(CHART_CHECK)
	@if $(HUBCHAOS) cluster cached; then \
	  made=""; $(HUBCHAOS) cluster status >/dev/null 2>&1 || made=1; \
	  status=0; $(HUBCHAOS) cluster up || status=1; \
	  [ $$status != 0 ] || $(CHART_ENV) $(CARGO) nextest run -p hubchaos-suites --test scenarios --profile $(NEXTEST_PROFILE)-kind $(KIND_IGNORED) -E 'test(/^kind::/)' || status=1; \
	  [ -z "$$made" ] || $(HUBCHAOS) cluster down || status=1; exit $$status; \
	else echo "kind scenarios skipped: the kind node image is not cached (make kind-image builds it, ~10 min cold)"; fi

## kind-image: build (or find cached) kind, helm, the engine, Kubernetes, etcd, coredns and the
## kind node image, from Go modules and Debian packages (root; ~10 min cold on 2 cores).
## With HUBCHAOS_KIND_NODE_IMAGE set (an image kind pulls, e.g. kindest/node:v1.34.0), the
## tools only.
kind-image: deps
	$(HUBCHAOS) cluster tools
	@if [ -z "$$HUBCHAOS_KIND_NODE_IMAGE" ]; then $(HUBCHAOS) cluster kubernetes && $(HUBCHAOS) cluster image; fi

## stack-images: the hub stack's images for kind (hub, proxy, singleuser, image-cleaner) from
## the python and npm pins on a Debian rootfs, each checked by running it (root; cached).
stack-images: deps
	$(HUBCHAOS) cluster tools
	$(HUBCHAOS) cluster stack-images

## cluster / cluster-down: the kind cluster, kept up between runs until cluster-down.
cluster: kind-image
	$(HUBCHAOS) cluster up

cluster-down:
	$(HUBCHAOS) cluster down

## lint: formatting (rustfmt.toml), clippy with warnings as errors, the workflows.
lint: lint-workflows
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings

## lint-workflows: actionlint over .github/workflows, built from its Go module once and kept
## under $HUBCHAOS_HOME/tools (they cannot run here: no GitHub). Without Go it says so and goes on.
ACTIONLINT_VERSION ?= v1.7.12
lint-workflows:
	@home="$${HUBCHAOS_HOME:-$$HOME/.cache/hubchaos}"; bin="$$home/tools/actionlint-$(ACTIONLINT_VERSION)"; \
	  if [ ! -x "$$bin/actionlint" ]; then \
	    if ! command -v go >/dev/null 2>&1; then echo "lint-workflows: SKIPPED, no Go to build actionlint with (install golang)" >&2; exit 0; fi; \
	    GOBIN="$$bin" GOFLAGS=-mod=mod go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION) || exit 1; \
	  fi; \
	  "$$bin/actionlint" -no-color .github/workflows/*.yml

## test-chaos: every chaos scenario on BACKEND (local: default; kind: the node image is built
## first when missing, and a cluster brought up for the run; CHART=PATH: the jupyterhub chart
## it installs), then the table.
BACKEND ?= local
test-chaos: deps
	@case "$(BACKEND)" in local|kind) ;; *) echo "BACKEND=$(BACKEND): not a backend; use BACKEND=local or BACKEND=kind" >&2; exit 2;; esac
	@if [ -n "$(CHART)" ] && [ "$(BACKEND)" != kind ]; then echo "CHART=$(CHART): charts are installed on kind only; add BACKEND=kind" >&2; exit 2; fi
	@$(CHART_CHECK)
	@if [ "$(BACKEND)" = kind ]; then $(MAKE) --no-print-directory kind-image; fi
	@if [ "$(BACKEND)" = kind ]; then $(MAKE) --no-print-directory test-kind KIND_IGNORED='--run-ignored all'; status=$$?; \
	  else $(CARGO) nextest run -p hubchaos-suites --test scenarios --profile $(NEXTEST_PROFILE) --run-ignored all -E 'test(/^local::/)'; status=$$?; fi; \
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
	$(CARGO) run --release --quiet -p hubchaos -- soak --duration $(DURATION) $(if $(BASELINE),--baseline $(BASELINE)) $(if $(SAVE_BASELINE),--save-baseline $(SAVE_BASELINE))

doctor:
	$(HUBCHAOS) doctor

env:
	$(HUBCHAOS) env

## sweep: end what killed runs left behind (processes, mounts; a kind cluster whose maker died).
sweep:
	$(HUBCHAOS) sweep

## bench: the recording proxy against a direct connection.
bench:
	$(CARGO) run --release --quiet -p hubchaos -- bench

report:
	$(HUBCHAOS) report
