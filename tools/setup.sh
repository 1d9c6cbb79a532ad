#!/usr/bin/env bash
# Installs and starts what `make test` and `make lint` need, and nothing else: Debian's
# Mosquitto (the shared broker on 127.0.0.1:1883; the e2e broker-restart test starts its
# own mosquitto too), Chromium and a CJK font (browser tests; the kiosk is Chinese-first,
# so its screenshots need the glyphs), Node.js with npm (page tests, the AsyncAPI and
# OpenAPI validators), promtool from Debian's prometheus package (rule checks and rule
# unit tests, exposition lint), zbarimg from zbar-tools (reads back the pages' QR codes),
# Debian's PostgreSQL (the store of replicated clouds: its tests create and drop their own
# databases on 127.0.0.1:5432 as user postgres, LARDER_TEST_PG overrides), NATS's
# nats-server (the clustered-broker tests start their own nodes), and the npm tool
# directories pinned by their lock files.
#
# Idempotent: when everything is present it only looks (well under a second). Installing
# needs root and apt-get; without them it prints one line saying what to run, and fails.
# LARDER_CHROMIUM names another Chromium; LARDER_SKIP_BROWSER=1 skips Chromium, the font
# and axe-core, as the browser tests then skip themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

browser=1
[ "${LARDER_SKIP_BROWSER:-}" = 1 ] && browser=0

# Debian packages, each named once with the check that tells it is there.
need=()
command -v mosquitto >/dev/null || need+=(mosquitto)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v promtool >/dev/null || need+=(prometheus)
command -v zbarimg >/dev/null || need+=(zbar-tools)
command -v nats-server >/dev/null || need+=(nats-server)
fresh_pg=0
if ! command -v pg_ctlcluster >/dev/null; then need+=(postgresql); fresh_pg=1; fi
if [ $browser = 1 ]; then
  [ -x "${LARDER_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
  command -v fc-list >/dev/null || need+=(fontconfig)
  fc-list 2>/dev/null | grep -qi 'wenquanyi\|noto sans cjk' || need+=(fonts-wqy-microhei)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing ${need[*]}; run: sudo apt-get install -y --no-install-recommends ${need[*]}"
    exit 1
  fi
  say "installing ${need[*]}"
  # Other apt runs on the machine hold the lock for a while; wait for them, not fail.
  apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null
fi

# The shared broker. Root starts Debian's own configuration (loopback, anonymous, as on
# the CI machine); anyone else gets a throwaway one with the same listener.
if ! up 1883; then
  if [ "$(id -u)" = 0 ] && [ -r /etc/mosquitto/mosquitto.conf ]; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
  else
    dir="${TMPDIR:-/tmp}/larder-mosquitto-$(id -u)"
    mkdir -p "$dir"
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file %s/mosquitto.log\n' "$dir" >"$dir/mosquitto.conf"
    mosquitto -d -c "$dir/mosquitto.conf"
  fi
  for _ in $(seq 1 50); do up 1883 && break; sleep 0.2; done
  up 1883 || { say "Mosquitto did not come up on 127.0.0.1:1883; run: mosquitto -d -c /etc/mosquitto/mosquitto.conf"; exit 1; }
  say "started Mosquitto on 127.0.0.1:1883"
fi

# PostgreSQL on 127.0.0.1:5432. A cluster this script installed gets trust for loopback
# connections (a test machine's only clients are its tests); an existing one is only
# started, with its own authentication.
if ! up 5432 && [ -z "${LARDER_TEST_PG:-}" ]; then
  [ "$(id -u)" = 0 ] || { say "PostgreSQL is not running on 127.0.0.1:5432; start it (pg_ctlcluster <version> main start)"; exit 1; }
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ $fresh_pg = 1 ]; then
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  for _ in $(seq 1 50); do up 5432 && break; sleep 0.2; done
  up 5432 || { say "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
  say "started PostgreSQL $ver on 127.0.0.1:5432"
fi

# npm tool directories: `npm ci` again only when the lock file is newer than the install
# (npm writes node_modules/.package-lock.json last).
dirs=(tools/asyncapi tools/openapi)
[ $browser = 1 ] && dirs+=(tools/browser)
for d in "${dirs[@]}"; do
  [ "$d/node_modules/.package-lock.json" -nt "$d/package-lock.json" ] && continue
  say "npm ci in $d"
  (cd "$d" && npm ci --no-audit --no-fund --silent)
done
