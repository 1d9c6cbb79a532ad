#!/usr/bin/env bash
# Lints the Prometheus exposition of larder-cloud and larder-edge with `promtool check
# metrics`: starts the demo (all three binaries) in a temporary directory on free ports,
# scrapes both /metrics endpoints (the demo's BASE+5 and BASE+6: each daemon's
# metrics_addr), checks that the API and the kiosk do not serve /metrics, stops the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build >/dev/null
dir=$(mktemp -d)
# A base below Linux's ephemeral range (32768-60999), so that no outgoing connection of a
# test running meanwhile holds one of the demo's ports.
port=$(python3 -c 'import random; print(random.randrange(20000, 32000, 10))')
./bin/larder-demo --data "$dir" --port "$port" >"$dir/demo.out" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
cloud="http://127.0.0.1:$((port + 5))/metrics" edge="http://127.0.0.1:$((port + 6))/metrics"
for _ in $(seq 1 120); do
  if curl -fs "$cloud" >/dev/null 2>&1 && curl -fs "$edge" >/dev/null 2>&1; then break; fi
  kill -0 $pid 2>/dev/null || { cat "$dir/demo.out"; echo "checkmetrics: demo exited"; exit 1; }
  sleep 0.5
done
status=0
# The exposition is fleet data: the public addresses (the API on BASE, the kiosk on
# BASE+2) must answer 404 for it.
for u in "http://127.0.0.1:$port/metrics" "http://127.0.0.1:$((port + 2))/metrics"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$u")
  [ "$code" = 404 ] || { echo "checkmetrics: $u answers $code, want 404 (metrics belong on metrics_addr)"; status=1; }
done
for u in "$cloud" "$edge"; do
  out=$(curl -fs "$u" | promtool check metrics 2>&1) || { echo "checkmetrics: $u"; echo "$out"; status=1; continue; }
  [ -z "$out" ] || { echo "checkmetrics: $u"; echo "$out"; status=1; continue; }
  echo "checkmetrics: $u ok ($(curl -fs "$u" | grep -c '^larder_') larder_ samples)"
done
# Every metric the alerting rules and the dashboard query must be one the code exports.
for m in $(grep -ohE 'larder_[a-z_]+' deploy/prometheus/alerts.yml deploy/grafana/*.json | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  grep -rqF "\"$m\"" --include='*.go' cloud edge || { echo "checkmetrics: $m is queried in deploy/ but no code exports it"; status=1; }
done
exit $status
