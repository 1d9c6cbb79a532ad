# Larder — build, test, run. `make help` lists the targets.
SHELL    := bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/larder-lockers/larder/internal/buildinfo.Version=$(VERSION)
BINS     := larder-cloud larder-edge larder-sim larder-demo
FUZZTIME ?= 30s
BENCHTIME ?= 1x

.PHONY: help build test setup run bench bench-load lint fuzz cross clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build the three binaries into bin/ (static, trimmed, version stamped)
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINS))

# `make test` is the one command that proves everything, and what CI (.ci/run) runs:
# set-up, every lint check, the Go tests, the page tests.
test: setup lint ## set up, lint, then run every test (Go and the kiosk's page tests)
	$(GO) test -count=1 -timeout 15m ./...
	node --test edge/kiosk/web/test/

setup: ## install and start what the tests need when missing (tools/setup.sh; fast when all is there)
	@./tools/setup.sh

run: build ## the demo: simulator, cloud and edge on this machine
	./bin/larder-demo

# The figure benchmarks loop over their own samples (one b.N iteration each); the
# per-operation ones (names ending in Order) need many iterations to mean anything.
bench: ## benchmarks; each prints its figure next to a baseline measured in the same run
	LARDER_BENCH=1 $(GO) test -count=1 -timeout 30m -run '^TestBench' -bench . -skip 'Order$$' -benchtime $(BENCHTIME) ./...
	$(GO) test -count=1 -run '^$$' -bench 'Order$$' -benchtime 2000x ./cloud/...
	$(MAKE) bench-load

# larder-load against the real larder-cloud (docs/load.md): embedded broker, then a private
# Mosquitto with deploy/mosquitto's settings, at 1,000 edges; then 10,000 edges embedded.
LOAD := ./bin/larder-load -start-cloud bin/larder-cloud -rate 200 -open-rate 20 -duration 20s -ingest-edges 100 -ingest-events 20000
bench-load: ## the load generator at 1k and 10k edges against the real larder-cloud
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/larder-cloud ./cmd/larder-load
	$(LOAD) -edges 1000 -json bin/load-1k.json
	$(LOAD) -edges 1000 -mosquitto $$(command -v mosquitto || echo /usr/sbin/mosquitto) -json bin/load-1k-mosquitto.json
	$(LOAD) -edges 10000 -concurrency 128 -json bin/load-10k.json

lint: setup ## gofmt, vet, staticcheck, imports, AsyncAPI, OpenAPI, Prometheus rules with their tests, exposition
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	./tools/importcheck.sh
	cd tools/asyncapi && node validate.mjs ../../protocol/asyncapi.yaml
	cd tools/openapi && node validate.mjs ../../cloud/http/openapi.json
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml
	./tools/rulecheck.sh
	./tools/checkmetrics.sh

fuzz: ## run every fuzz test for FUZZTIME each (default 30s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

cross: ## larder-edge for linux/arm64 and linux/arm (GOARM=7)
	@mkdir -p bin
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/larder-edge-linux-arm64 ./cmd/larder-edge
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/larder-edge-linux-armv7 ./cmd/larder-edge

clean: ## remove build outputs
	rm -rf bin
