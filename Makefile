# Ferry: the two commands that matter are `make demo` and `make test`.
GO        ?= go
PKGS      ?= ./...
# Test modules kept apart from the main module (their dependencies are large).
TEST_MODULES := $(wildcard conformance/go.mod conformance/nacosv1/go.mod conformance/dubbogo/go.mod bench/peers/go.mod)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GOTEST_FLAGS ?= -race -count=1 -timeout 30m
# Test modules run without -race because their third-party client races
# internally: nacos-sdk-go v2.3.5's CloseClient deletes from its global
# client map while its config listen loop reads it (rpc_client.go:384 vs
# :156); dubbo-go v3.3.2 (conformance/dubbogo) races inside nacos-sdk-go
# v2.2.5 and dubbo-getty. Ferry's own code is race-tested in the main module.
NORACE_MODULES := conformance conformance/dubbogo

.PHONY: all build demo test test-deps vet fmt-check bench proto clean

all: build

build:
	$(GO) build -o bin/ferry ./cmd/ferry

## demo: ZooKeeper seeded with sample Dubbo providers, an in-process registry, a sync worker.
demo: test-deps
	$(GO) run ./cmd/ferry demo

## test-deps: ZooKeeper, MariaDB and a headless Chromium (the console's browser tests) from Debian's packages, installed when missing.
test-deps:
	@missing=""; \
	[ -f /usr/share/java/zookeeper.jar ] || missing="$$missing zookeeper"; \
	{ command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || missing="$$missing mariadb-server"; \
	command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null || missing="$$missing chromium-headless-shell"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing default-jre-headless; \
	fi

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: test-deps fmt-check vet
	$(GO) test $(GOTEST_FLAGS) $(PKGS)
	@for m in $(TEST_MODULES); do d=$$(dirname $$m); f="$(GOTEST_FLAGS)"; \
		case " $(NORACE_MODULES) " in *" $$d "*) f=$$(echo "$$f" | sed 's/-race//'); echo "== $$d (without -race: see NORACE_MODULES)";; *) echo "== $$d";; esac; \
		(cd $$d && $(GO) vet ./... && $(GO) test $$f ./...) || exit 1; done

## bench: the go benchmarks and `ferry bench`; figures go to BENCHMARKS.md by hand.
bench: test-deps
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(GO) run ./cmd/ferry bench all

## proto: regenerate the wire package's protobuf code (needs protoc and protoc-gen-go).
proto:
	@command -v protoc-gen-go >/dev/null || { echo "protoc-gen-go missing: go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.5 (match google.golang.org/protobuf in go.mod)"; exit 1; }
	protoc --go_out=. --go_opt=module=github.com/ferrysync/ferry wire/nacos.proto

clean:
	rm -rf bin data
