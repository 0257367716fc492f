# ack-virtual-node — build, test and demo entry points.
# `make demo` and `make test` install everything they need on a fresh machine.

GO        ?= go
BIN       := bin
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/ack-virtual-node/ack-virtual-node/pkg/version.Version=$(VERSION)
COMMANDS  := virtual-node vnode-webhook vnode-approver vnodectl eci-simulator devcluster
TEST_TIMEOUT ?= 30m

.PHONY: all build test unit-test bench kwok deps etcd kube-binaries demo demo-down vet fmt clean

all: build

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

## test: unit and integration tests (real control plane + ECI simulator)
test: deps
	$(GO) vet ./...
	$(GO) test -race -short -count=1 ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## unit-test: only the tests that need no control plane
unit-test:
	$(GO) test -count=1 -short ./...

## bench: scale benchmark of one virtual node beside kwok (BENCH_FLAGS, e.g. -pods 10000)
BENCH_FLAGS ?=
bench: deps kwok
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/virtual-node ./cmd/vnode-bench
	$(BIN)/vnode-bench $(BENCH_FLAGS)

## kwok: the pinned kwok (benchmark baseline) into bin/ (cached)
kwok:
	@./ci/build-kwok.sh

## demo: local control plane + simulator + virtual node + a sample Deployment
demo: deps build
	@./ci/demo.sh up

## demo-down: stop everything `make demo` started
demo-down:
	@./ci/demo.sh down

fmt:
	gofmt -w cmd pkg test images charts

clean:
	rm -rf $(BIN) .devcluster
