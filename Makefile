# ack-virtual-node — build, test and demo entry points.
# Start with `make help`: it lists every target with its `## ` comment.
# `make demo` and `make test` install everything they need on a fresh machine.

GO        ?= go
BIN       := bin
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/ack-virtual-node/ack-virtual-node/pkg/version.Version=$(VERSION)
COMMANDS  := virtual-node vnode-webhook vnode-approver vnodectl eci-simulator devcluster
TEST_TIMEOUT ?= 30m
# Integration tests run in parallel (t.Parallel); most of their time is
# spent waiting on the simulator's delays, not on the CPU.
TEST_PARALLEL ?= 4
# Packages with tests that need a control plane (they skip under -short):
# the integration tier runs only these, so the unit-only packages are not
# built and run a second time.
INTEGRATION_PKGS = $(shell grep -rlE --include=*_test.go 'controlplane\.|testenv\.|testing\.Short\(\)' cmd pkg test images | xargs -n1 dirname | sort -u | sed 's|^|./|')

.PHONY: all help build test unit-test unit-race integration-test bench kwok deps etcd kube-binaries demo demo-down vet fmt clean

all: build

## help: list the targets and what they do (this list)
help:
	@echo "Targets (make <target>):"
	@sed -n 's/^## \([^:]*\): /\1\t/p' $(MAKEFILE_LIST) | awk -F '\t' '{ printf "  %-17s %s\n", $$1, $$2 }'

## build: compile every command into bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(COMMANDS))

## deps: etcd from Debian and the pinned control-plane binaries
deps: etcd kube-binaries

etcd:
	@[ -x /usr/bin/etcd ] || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q etcd-server; }
	@/usr/bin/etcd --version | head -1

## kube-binaries: kube-apiserver, -scheduler, -controller-manager into bin/kube (cached)
kube-binaries:
	@./ci/build-kube.sh

## test: vet, then every unit test under -race, then every test that needs a control plane
test: deps vet unit-race integration-test

## vet: go vet ./...
vet:
	$(GO) vet ./...

## unit-test: only the tests that need no control plane
unit-test:
	$(GO) test -count=1 -short ./...

## unit-race: the unit tier under the race detector (as make test runs it)
unit-race:
	$(GO) test -race -short -count=1 ./...

## integration-test: the tests skipped under -short (real control plane + ECI simulator), in INTEGRATION_PKGS
integration-test: deps
	$(GO) test -count=1 -parallel $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(INTEGRATION_PKGS)

## bench: scale benchmark of one virtual node beside kwok (BENCH_FLAGS, e.g. -pods 10000)
BENCH_FLAGS ?=
bench: deps kwok
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/virtual-node ./cmd/vnode-bench
	$(BIN)/vnode-bench $(BENCH_FLAGS)

## kwok: the pinned kwok (benchmark baseline) into bin/ (cached)
kwok:
	@./ci/build-kwok.sh

## demo: local control plane + simulator + webhook + virtual node + a Deployment labelled alibabacloud.com/eci=true
demo: deps build
	@./ci/demo.sh up

## demo-down: stop everything `make demo` started
demo-down:
	@./ci/demo.sh down

## fmt: gofmt every Go file
fmt:
	gofmt -w cmd pkg test images charts

## clean: remove bin/ and the devcluster state
clean:
	rm -rf $(BIN) .devcluster
