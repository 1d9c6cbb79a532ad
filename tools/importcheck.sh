#!/usr/bin/env bash
# Import-direction check (the layering README.md describes): protocol imports only the standard library; edge and
# cloud never import each other; firmware-sim imports only protocol/board of this module; conform (the
# conformance kit) imports only protocol.
# Test files are excluded: `go list -deps` without -test follows production imports only.
set -euo pipefail
mod=$(go list -m)
fail=0
deps() { go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "$@" | sort -u; }

bad=$(deps ./protocol/... | grep -v "^$mod/protocol" || true)
[ -z "$bad" ] || { echo "importcheck: protocol must import only the standard library, found:"; echo "$bad"; fail=1; }

if ls edge/*.go >/dev/null 2>&1 || [ -n "$(find edge -name '*.go' 2>/dev/null | head -1)" ]; then
  bad=$(deps ./edge/... | grep "^$mod/cloud" || true)
  [ -z "$bad" ] || { echo "importcheck: edge must not import cloud, found:"; echo "$bad"; fail=1; }
fi
if [ -n "$(find cloud -name '*.go' 2>/dev/null | head -1)" ]; then
  bad=$(deps ./cloud/... | grep "^$mod/edge" || true)
  [ -z "$bad" ] || { echo "importcheck: cloud must not import edge, found:"; echo "$bad"; fail=1; }
fi
if [ -n "$(find firmware-sim -name '*.go' 2>/dev/null | head -1)" ]; then
  bad=$(deps ./firmware-sim/... | grep "^$mod/" | grep -v "^$mod/firmware-sim" | grep -v "^$mod/protocol/board$" || true)
  [ -z "$bad" ] || { echo "importcheck: firmware-sim may import only protocol/board of this module, found:"; echo "$bad"; fail=1; }
fi
if [ -n "$(find conform -name '*.go' 2>/dev/null | head -1)" ]; then
  # The conformance kit implements the contract on its own: it may not borrow edge's or cloud's code.
  bad=$(deps ./conform/... ./cmd/larder-conform | grep "^$mod/" | grep -v "^$mod/protocol$" | grep -v -e "^$mod/conform$" -e "^$mod/cmd/larder-conform$" || true)
  [ -z "$bad" ] || { echo "importcheck: conform may import only protocol of this module, found:"; echo "$bad"; fail=1; }
fi
if [ -n "$(find loadgen -name '*.go' 2>/dev/null | head -1)" ]; then
  bad=$(deps ./loadgen/... ./cmd/larder-load | grep -E "^$mod/(cloud|edge)" || true)
  [ -z "$bad" ] || { echo "importcheck: loadgen plays edges from outside and must not import cloud or edge, found:"; echo "$bad"; fail=1; }
fi
[ $fail = 0 ] && echo "importcheck: ok"
exit $fail
