#!/usr/bin/env bash
# Installs the Debian packages that the test suites run as programs, before any test starts.
# `npm test` runs it as `pretest`; tests only check for the commands (test/tools.ts, ensureCommand).
#
# Idempotent: when every command is already there it does no apt work at all. Otherwise, as root (or
# through `sudo -n`), it runs `apt-get update` then installs only the missing packages, waiting for
# the dpkg/apt locks that another apt-get may hold instead of failing on them.
set -euo pipefail

# command (a name on the PATH or an absolute path)  Debian package  who needs it
REQUIRED=(
  'docker-compose docker-compose test/compose.test.ts'
  'prometheus prometheus test/e2e/prometheus.test.ts'
  'prometheus-alertmanager prometheus-alertmanager test/e2e/prometheus.test.ts'
  'prometheus-node-exporter prometheus-node-exporter test/e2e/node-exporter.test.ts'
  'redis-server redis-server test/servers.ts (startRedis), .ci/run'
  'redis-cli redis-tools .ci/run'
  '/usr/lib/postgresql/15/bin/pg_ctl postgresql-15 test/servers.ts (startPostgres)'
  'pg_isready postgresql-client-common .ci/run'
  'chromium chromium test/console (playwright-core drives it headless)'
)

missing=()
for entry in "${REQUIRED[@]}"; do
  read -r command package _ <<<"$entry"
  if ! command -v "$command" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "test-deps: all test programs present"
  exit 0
fi
# Unique, in order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "test-deps: installing Debian packages: ${missing[*]}"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "test-deps: not root: install the Debian packages ${missing[*]} (apt-get install ${missing[*]}), then run the tests again" >&2
    exit 1
  fi
fi

LOCK_WAIT=600
apt_opts=(-o "DPkg::Lock::Timeout=$LOCK_WAIT" -o Dpkg::Use-Pty=0 -q)

# Runs an apt-get command; while it fails because another apt/dpkg holds a lock (apt-get update does not
# honour DPkg::Lock::Timeout for the lists lock), waits and tries again, for up to LOCK_WAIT seconds.
apt_retry() {
  local deadline=$((SECONDS + LOCK_WAIT)) log status
  log=$(mktemp)
  while true; do
    status=0
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" "$@" 2>"$log" || status=$?
    if [ "$status" -eq 0 ]; then
      cat "$log" >&2
      rm -f "$log"
      return 0
    fi
    if grep -qiE 'could not get lock|unable to lock|unable to acquire|is another process using it' "$log" && [ $SECONDS -lt $deadline ]; then
      echo "test-deps: apt is locked by another process, waiting" >&2
      sleep 5
      continue
    fi
    cat "$log" >&2
    rm -f "$log"
    return "$status"
  done
}

apt_retry update
apt_retry install -y --no-install-recommends "${missing[@]}"

for entry in "${REQUIRED[@]}"; do
  read -r command package _ <<<"$entry"
  if ! command -v "$command" >/dev/null 2>&1; then
    echo "test-deps: $command is still missing after installing $package" >&2
    exit 1
  fi
done
echo "test-deps: done"
