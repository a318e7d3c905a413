# ikegate build and test entry points. `make test` is what CI runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN  := $(ROOT)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
HELM := $(BIN)/helm

# envtest control plane built by hack/envtest-assets.sh.
export KUBEBUILDER_ASSETS ?= $(BIN)/k8s
# As root, a privileged test suite must run: require.Root/Commands
# then fail instead of skipping. Non-root developers get skips.
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)
export IKEGATE_REQUIRE_ROOT_TESTS ?= $(IS_ROOT)

GO_TEST_FLAGS ?= -count=1 -timeout 60m

# Packages handed to controller-gen; only directories that exist, so the
# targets work before api/ or controllers/ are written.
API_PATHS  := $(if $(wildcard api/*/*.go),./api/...)
CTRL_PATHS := $(if $(wildcard controllers/*.go controllers/*/*.go),./controllers/...)
GEN_PATHS  := $(strip $(API_PATHS) $(CTRL_PATHS))

CRD_DIR   := config/crd/bases
RBAC_DIR  := config/rbac
WEBHOOK_DIR := config/webhook
# The chart reads generated copies from files/ (not crds/): its templates wrap
# the CRDs in `crds.install` and take the ClusterRole rules from role.yaml.
CHART_CRD_DIR := charts/ikegate/files/crds
CHART_RBAC_DIR := charts/ikegate/files/rbac
# Paths written by generate/manifests; `make verify` fails if they drift.
GENERATED_PATHS := api $(CRD_DIR) $(RBAC_DIR) $(WEBHOOK_DIR) $(CHART_CRD_DIR) $(CHART_RBAC_DIR)

GO_FILES_CMD := find . -name '*.go' -not -path './bin/*' -not -path './tmp/*' -not -path './.git/*' -not -path './vendor/*'

.PHONY: all
all: build

## ---- tools -----------------------------------------------------------------

.PHONY: tools
tools: ## controller-gen and helm into bin/ (cached per version)
	hack/tools.sh

.PHONY: controller-gen
controller-gen:
	hack/tools.sh controller-gen

.PHONY: helm
helm:
	hack/tools.sh helm

.PHONY: envtest
envtest: ## kube-apiserver, etcd, kubectl into bin/k8s (cached per version)
	hack/envtest-assets.sh

.PHONY: promtool
promtool: ## promtool into bin/ from Debian's prometheus package (unpacked, never installed)
	hack/install-promtool.sh

.PHONY: strongswan
strongswan: ## Debian strongSwan and network tools (apt, as root)
	hack/install-strongswan.sh

.PHONY: libreswan
libreswan: ## Debian libreswan unpacked (not installed) into ~/.cache/ikegate for the interop tests
	hack/libreswan.sh >/dev/null

## ---- code generation -------------------------------------------------------

.PHONY: generate
generate: controller-gen ## DeepCopy methods for the API types
ifneq ($(API_PATHS),)
	$(CONTROLLER_GEN) object paths=$(API_PATHS)
else
	@echo "generate: no api/ packages yet; nothing to do"
endif

.PHONY: manifests
manifests: controller-gen ## CRDs, RBAC, webhook config; CRDs copied into the chart
ifneq ($(GEN_PATHS),)
	rm -f $(CRD_DIR)/*.yaml
	$(CONTROLLER_GEN) crd rbac:roleName=ikegate-manager webhook \
		$(addprefix paths=,$(GEN_PATHS)) \
		output:crd:artifacts:config=$(CRD_DIR) \
		output:rbac:artifacts:config=$(RBAC_DIR) \
		output:webhook:artifacts:config=$(WEBHOOK_DIR)
	@# $(CHART_CRD_DIR) and $(CHART_RBAC_DIR) are generated copies of $(CRD_DIR) and $(RBAC_DIR)/role.yaml, never edited by hand.
	rm -f $(CHART_CRD_DIR)/*.yaml
	if compgen -G '$(CRD_DIR)/*.yaml' >/dev/null; then \
		mkdir -p $(CHART_CRD_DIR) && cp $(CRD_DIR)/*.yaml $(CHART_CRD_DIR)/; \
	fi
	rm -f $(CHART_RBAC_DIR)/*.yaml
	if [ -f $(RBAC_DIR)/role.yaml ]; then \
		mkdir -p $(CHART_RBAC_DIR) && cp $(RBAC_DIR)/role.yaml $(CHART_RBAC_DIR)/; \
	fi
else
	@echo "manifests: no api/ or controllers/ packages yet; nothing to do"
endif

## ---- checks ----------------------------------------------------------------

.PHONY: fmt
fmt:
	$(GO_FILES_CMD) -print0 | xargs -0 -r gofmt -s -w

.PHONY: vet
vet:
	go vet ./...

.PHONY: verify
verify: generate manifests ## fail on unformatted code, vet findings, or stale generated files
	@out="$$($(GO_FILES_CMD) -print0 | xargs -0 -r gofmt -s -l)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	go vet ./...
	@paths=""; for p in $(GENERATED_PATHS); do [ -e "$$p" ] && paths="$$paths $$p"; done; \
	if [ -n "$$paths" ]; then \
		git diff --exit-code -- $$paths || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }; \
		untracked="$$(git ls-files --others --exclude-standard -- $$paths)"; \
		if [ -n "$$untracked" ]; then echo "generated files not committed:"; echo "$$untracked"; exit 1; fi; \
	fi

.PHONY: chart
chart: helm manifests ## lint the Helm chart and package it into tmp/charts
	$(HELM) lint --strict charts/ikegate
	$(HELM) package charts/ikegate --destination tmp/charts

## ---- build and test --------------------------------------------------------

.PHONY: build
build:
	go build ./cmd/...

# Where `make install` puts kubectl-ikegate: kubectl runs any kubectl-* on
# the PATH as a plugin. go install's directory by default.
PLUGIN_DIR ?= $(or $(shell go env GOBIN),$(shell go env GOPATH)/bin)
# render validates as the API server does by linking its validation code:
# 101 MB with symbols, 72 MB without (kubectl itself ships stripped, 62 MB).
PLUGIN_LDFLAGS ?= -s -w

.PHONY: plugin
plugin: ## kubectl-ikegate into bin/
	go build -trimpath -ldflags='$(PLUGIN_LDFLAGS)' -o $(BIN)/kubectl-ikegate ./cmd/kubectl-ikegate

.PHONY: install
install: ## kubectl-ikegate into PLUGIN_DIR (default: go install's), so that `kubectl ikegate` works
	mkdir -p $(PLUGIN_DIR)
	GOBIN=$(abspath $(PLUGIN_DIR)) go install -trimpath -ldflags='$(PLUGIN_LDFLAGS)' ./cmd/kubectl-ikegate
	@case ":$$PATH:" in *":$(abspath $(PLUGIN_DIR)):"*) echo "installed $(abspath $(PLUGIN_DIR))/kubectl-ikegate: try 'kubectl ikegate --help'";; \
	  *) echo "installed $(abspath $(PLUGIN_DIR))/kubectl-ikegate, but $(abspath $(PLUGIN_DIR)) is not on your PATH: add it, or run 'make install PLUGIN_DIR=/usr/local/bin'";; esac

.PHONY: test
test: tools envtest strongswan libreswan promtool generate manifests ## all tests against the real control plane and strongSwan
	@echo "KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) IKEGATE_REQUIRE_ROOT_TESTS=$(IKEGATE_REQUIRE_ROOT_TESTS)"
	go test $(GO_TEST_FLAGS) ./...

.PHONY: demo
demo: tools envtest strongswan ## the seed scenario live: control plane, manager, gateway, a client connecting (DEMO_ONESHOT=1 exits after the check)
	go test -c -o $(BIN)/e2e.test ./test/e2e
	IKEGATE_DEMO=1 $(BIN)/e2e.test -test.run '^TestEndToEnd$$' -test.count=1 -test.timeout=0

# The scale benchmarks seed 100,000 users into a real API server
# (BenchmarkManagerUsers, BenchmarkUserReadyFigures): hours on 2 cores.
.PHONY: bench
bench: envtest
	go test -run '^$$' -bench . -benchmem -count=1 -timeout 240m ./...

.PHONY: clean
clean: ## removes bin/ links (the per-user cache stays)
	rm -rf bin tmp cover.out coverage.out

.PHONY: help
help:
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
