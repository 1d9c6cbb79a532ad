# Larder — build, test, run. `make help` lists the targets.
SHELL    := bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/larder-lockers/larder/internal/buildinfo.Version=$(VERSION)
BINS     := larder-cloud larder-edge larder-sim larder-demo larder-conform larder-load
FUZZTIME ?= 30s
BENCHTIME ?= 1x

.PHONY: help build test setup run bench bench-load lint fuzz cross clean conform

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build the binaries into bin/ (static, trimmed, version stamped)
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINS))

# `make test` is the one command that proves everything, and what CI (.ci/run) runs:
# set-up, every lint check, the conformance kit against Larder, the Go tests, the page tests.
test: setup lint conform ## set up, lint, conformance, then run every test (Go and the kiosk's page tests)
	$(GO) test -count=1 -timeout 15m ./...
	node --test edge/kiosk/web/test/ cloud/web/test/

# The conformance kit (docs/conformance.md) against Larder's own binaries, on loopback
# ports 7491-7496 with fresh secrets: edge mode (larder-sim, the kit as broker and cloud,
# larder-edge), then cloud mode (larder-cloud with its embedded broker, the kit as edge).
conform: build ## the conformance kit against Larder's own edge and cloud (bin/larder-conform)
	@set -euo pipefail; d=$$(mktemp -d); st=0; \
	trap 'kill $$(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$$d"' EXIT; \
	waitport() { for _ in $$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$$1) 2>/dev/null && return 0; sleep 0.1; done; echo "conform: port $$1 never opened"; return 1; }; \
	hex() { od -An -tx1 -N$$1 /dev/urandom | tr -d ' \n'; }; \
	key=$$(hex 32); pw=$$(hex 24); admin=lk_$$(hex 24); zones=chilled:1-8,frozen:9-12,ambient:13-16; \
	./bin/larder-sim --listen tcp://127.0.0.1:7491 --control 127.0.0.1:7492 --zones $$zones >"$$d/sim.log" 2>&1 & \
	waitport 7492; \
	LARDER_CONFORM_SITE_KEY=$$key LARDER_CONFORM_MQTT_PASSWORD=$$pw ./bin/larder-conform -mode edge -listen 127.0.0.1:7493 \
	  -site conform-make -kiosk http://127.0.0.1:7494 -sim http://127.0.0.1:7492 -wait 1s & kit=$$!; \
	waitport 7493; \
	LARDER_EDGE_SITE_KEY=$$key LARDER_EDGE_BROKER_PASSWORD=$$pw ./bin/larder-edge -site conform-make -data "$$d/edge" \
	  -kiosk 127.0.0.1:7494 -metrics off -broker tcp://127.0.0.1:7493 -broker-user conform-make \
	  -bus tcp://127.0.0.1:7491 -zones $$zones -log-level warn >"$$d/edge.log" 2>&1 & edge=$$!; \
	wait $$kit || { st=1; tail -n 20 "$$d/edge.log"; }; kill $$edge; \
	LARDER_CLOUD_ADMIN_KEY=$$admin ./bin/larder-cloud -data "$$d/cloud" -http 127.0.0.1:7495 -metrics off \
	  -mqtt-listen 127.0.0.1:7496 -log-level warn >"$$d/cloud.log" 2>&1 & \
	waitport 7495; \
	LARDER_CONFORM_ADMIN_KEY=$$admin ./bin/larder-conform -mode cloud -cloud http://127.0.0.1:7495 -wait 1s \
	  || { st=1; tail -n 20 "$$d/cloud.log"; }; \
	exit $$st

setup: ## install and start what the tests need when missing (tools/setup.sh; fast when all is there)
	@./tools/setup.sh

run: build ## the demo: simulator, cloud and edge on this machine
	./bin/larder-demo

# The figure benchmarks loop over their own samples (one b.N iteration each); the
# per-operation ones (names ending in Order) need many iterations to mean anything.
# The orders over HTTP run again with a million stored orders (issue 10's growth target).
bench: ## benchmarks; each prints its figure next to a baseline measured in the same run
	LARDER_BENCH=1 $(GO) test -count=1 -timeout 30m -run '^TestBench' -bench . -skip 'Order$$' -benchtime $(BENCHTIME) ./...
	LARDER_BENCH=1 LARDER_BENCH_STORED=1000000 $(GO) test -count=1 -timeout 30m -run '^TestBenchOrdersHTTP$$' ./cloud/http/
	$(GO) test -count=1 -run '^$$' -bench 'Order$$' -benchtime 2000x ./cloud/...
	$(MAKE) bench-load

# larder-load against the real larder-cloud (docs/load.md): embedded broker, then a private
# Mosquitto with deploy/mosquitto's settings, at 1,000 edges; then 10,000 edges embedded;
# then two replicas over a fresh PostgreSQL database on BENCH_PG's server, dropped afterwards.
BENCH_PG ?= postgres://postgres@127.0.0.1:5432
LOAD := ./bin/larder-load -start-cloud bin/larder-cloud -rate 200 -open-rate 20 -duration 20s -ingest-edges 100 -ingest-events 20000
# issue 10's targets: ingest ≥ 0.5 × the raw broker, remote open p99 < 250 ms, and memory per
# edge ≤ 50 KB embedded, ≤ 20 KB with an external broker (per line below); the first line is
# ingest from a single edge
WANT := -want-ingest-ratio 0.5 -want-open-p99 250ms
bench-load: ## the load generator at 1k and 10k edges against the real larder-cloud
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/larder-cloud ./cmd/larder-load
	$(LOAD) -want-ingest-ratio 0.5 -edges 100 -ingest-edges 1 -ingest-events 20000 -rate 0 -open-rate 0 -duration 1s -json bin/load-1edge.json
	$(LOAD) $(WANT) -want-memory-per-edge 51200 -edges 1000 -json bin/load-1k.json
	$(LOAD) $(WANT) -want-memory-per-edge 20480 -edges 1000 -mosquitto $$(command -v mosquitto || echo /usr/sbin/mosquitto) -storm -json bin/load-1k-mosquitto.json
	$(LOAD) $(WANT) -want-memory-per-edge 51200 -edges 10000 -concurrency 128 -storm -json bin/load-10k.json
	@db=larder_bench_$$(date +%s); psql "$(BENCH_PG)/postgres" -qc "CREATE DATABASE $$db" || exit 1; \
	$(LOAD) -edges 1000 -mosquitto $$(command -v mosquitto || echo /usr/sbin/mosquitto) -replicas 2 \
	  -store "$(BENCH_PG)/$$db" -json bin/load-ha.json; st=$$?; \
	psql "$(BENCH_PG)/postgres" -qc "DROP DATABASE $$db WITH (FORCE)"; exit $$st

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
