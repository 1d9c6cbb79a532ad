#!/usr/bin/env bash
# The demo behind `make run` (after `make build`): larder-demo starts bin/larder-sim,
# bin/larder-cloud and bin/larder-edge, provisions and seeds on the first run, prints the
# URLs and credentials, and stops them in order on Ctrl-C. Arguments go to larder-demo
# (-data DIR, -port BASE, -follow, -site ID). Building larder-demo here keeps `make run`
# working whether or not the Makefile's BINS lists it.
set -euo pipefail
cd "$(dirname "$0")/.."
CGO_ENABLED=0 "${GO:-go}" build -trimpath -o bin/ ./cmd/larder-demo
exec ./bin/larder-demo "$@"
