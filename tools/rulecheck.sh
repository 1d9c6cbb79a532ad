#!/usr/bin/env bash
# Proves the alerting rules' unit tests (deploy/prometheus/alerts.test.yml) can fail: plants
# one wrong rule at a time in a copy of deploy/prometheus/alerts.yml and fails unless
# `promtool test rules` fails on each. Run by `make lint`.
#
# Every rule gets two plants, so a new rule is covered without editing this file: its final
# comparison made `> Inf` (it never fires: survives when the rule has no firing test) and
# `> -Inf` (it fires on every series it selects: survives when no healthy series sits
# beside the bad one). Then a few slips a person could make: a threshold moved, `>=` for
# `>`, a longer `for`, another severity, another alarm kind, and the dead-letter rule as it
# was (increase() of the dead counter, blind to the first dead letter).
#
# All the copies go to one `promtool test rules` run (a run per copy takes several times
# longer); its report names each file with SUCCESS or the failed expectations. The copy of
# alerts.yml as it is runs with them and must pass, which also proves the report was read.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=deploy/prometheus/alerts.yml
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0 n=0 what=()

# plant DESCRIPTION RULE FIELD REGEX REPLACEMENT writes copy n: alerts.yml with the first
# FIELD line (expr, for, labels) of RULE changed by awk's sub(REGEX, REPLACEMENT).
plant() {
  n=$((n + 1))
  what[n]="$2: $1"
  mkdir "$dir/$n"
  cp deploy/prometheus/alerts.test.yml "$dir/$n/"
  awk -v rule="$2" -v field="$3:" -v re="$4" -v rep="$5" '
    $1 == "-" && $2 == "alert:" { cur = $3 }
    cur == rule && $1 == field && !done && sub(re, rep) { done = 1 }
    { print }
    END { exit done ? 0 : 3 }' "$rules" >"$dir/$n/alerts.yml" && return
  echo "rulecheck: ${what[n]}: no $3 line of $2 matches /$4/; update tools/rulecheck.sh"
  status=1
}

mkdir "$dir/0"
cp "$rules" deploy/prometheus/alerts.test.yml "$dir/0/"
cmp='(==|!=|>=|<=|>|<) *-?[0-9.]+ *$'
for r in $(awk '$1 == "-" && $2 == "alert:" { print $3 }' "$rules"); do
  plant "never fires" "$r" expr "$cmp" '> Inf'
  plant "fires on healthy series too" "$r" expr "$cmp" '> -Inf'
done
plant "threshold 8 °C instead of 7" LarderChilledZoneTooWarm expr '> 7$' '> 8'
plant "at the limit counts as too warm" LarderChilledZoneTooWarm expr '> 7$' '>= 7'
plant "offline for 15m before paging" LarderEdgeOffline for '5m' '15m'
plant "pages instead of a ticket" LarderDoorLeftOpen labels 'ticket' 'page'
plant "watches another alarm kind" LarderHelpRequested expr 'help_requested' 'door_left_open'
plant "two lockouts an hour are a burst" LarderCodeLockoutBurst expr '> 3$' '> 2'
plant "counts the dead counter's increase" LarderWebhookDeadLetters expr 'larder_webhook_dead_letters > 0' 'increase(larder_webhook_deliveries_total{result="dead"}[1h]) > 0'
[ $status = 0 ] || exit 1

# A plant that is not a valid rule would fail its tests for the wrong reason.
if ! promtool check rules "$dir"/*/alerts.yml >/dev/null 2>&1; then
  for i in $(seq 1 $n); do
    out=$(promtool check rules "$dir/$i/alerts.yml" 2>&1) && continue
    echo "rulecheck: ${what[i]}: the planted rule is not valid, so it proves nothing:"
    echo "$out"
  done
  exit 1
fi

report=$(promtool test rules "$dir"/*/alerts.test.yml 2>&1 || true)
passed=$(awk '/^Unit Testing: / { f = $3 } /^ *SUCCESS *$/ && f != "" { print f; f = "" }' <<<"$report")
if ! grep -qx "$dir/0/alerts.test.yml" <<<"$passed"; then
  echo "rulecheck: the rule tests fail on alerts.yml as it is:"
  echo "$report"
  exit 1
fi
for i in $(seq 1 $n); do
  grep -qx "$dir/$i/alerts.test.yml" <<<"$passed" || continue
  echo "rulecheck: ${what[i]}: the rule tests still pass (add a test that fires it or one that keeps it silent)"
  status=1
done
[ $status = 0 ] && echo "rulecheck: the rule tests caught all $n planted wrong rules"
exit $status
