#!/usr/bin/env bash
# The whole test suite, in passes that each run whatever happened to the ones
# before, so one red run tells everything: the deployment check, pytest on
# SQLite (it starts its own Redis), its in-process tests again across the
# restaurant's midnight, the browser tests, and the order and alert
# tests again on PostgreSQL. A summary of every pass ends the output; the exit
# status is non-zero if any pass failed. Arguments go to every pytest pass.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/prerequisites.sh msgfmt || exit 1
# Without Chromium the other passes still run; the browser pass then fails.
bash scripts/prerequisites.sh chromium dbus || echo "The browser tests will fail without Chromium and dbus-daemon." >&2
# The tests on the production topology (tests/processes/test_cluster.py) start nginx.
bash scripts/prerequisites.sh nginx || echo "The cluster tests will fail without nginx." >&2
# Translations are compiled here, never committed.
DEBUG=true .venv/bin/python manage.py compilemessages --ignore .venv -v 0 || exit 1

results=()
failed=0

# run_pass NAME COMMAND...: runs it and records its outcome. Any non-zero
# status fails the pass, pytest's 5 ("no tests collected") included: every
# pass here has tests, so finding none means it tested nothing.
run_pass() {
  local name=$1 started=$SECONDS status
  shift
  echo
  echo "== $name"
  "$@"
  status=$?
  if [ "$status" -eq 0 ]; then
    results+=("passed  $name ($((SECONDS - started)) s)")
  else
    results+=("FAILED  $name (exit status $status, $((SECONDS - started)) s)")
    failed=$((failed + 1))
  fi
}

run_pass "deployment check" bash scripts/deploy_check.sh
run_pass "pytest on SQLite" .venv/bin/python -m pytest -m "not browser" "$@"
# Again with the test process's clock at 23:58:30 restaurant time, ticking on, so
# midnight passes during the run: date bugs show up whatever hour CI starts.
run_pass "in-process tests across the restaurant's midnight" \
  env PICKUP_TEST_CLOCK=23:58:30 .venv/bin/python -m pytest -m "not processes and not browser" "$@"
run_pass "browser tests (Chromium)" .venv/bin/python -m pytest -m browser tests/browser "$@"

# PostgreSQL: PICKUP_TEST_POSTGRES_URL, or the machine's local server. CI must
# reach it; a developer machine without it skips this pass and says so.
postgres_url="${PICKUP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if .venv/bin/python -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$postgres_url" 2>/dev/null; then
  # The order and alert tests again, and the process tests written for PostgreSQL
  # (marked postgres: connection bounds, a frozen worker's row locks).
  run_pass "order and alert tests on PostgreSQL" \
    env PICKUP_TEST_DATABASE_URL="$postgres_url" .venv/bin/python -m pytest tests/orders tests/notifications tests/processes \
    -m "not processes or postgres" "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL at $postgres_url does not answer; CI must run the PostgreSQL tests." >&2
  results+=("FAILED  order and alert tests on PostgreSQL (no server at $postgres_url; required in CI)")
  failed=$((failed + 1))
else
  results+=("skipped order and alert tests on PostgreSQL (no server at $postgres_url; set PICKUP_TEST_POSTGRES_URL)")
fi

echo
echo "== Summary of every pass"
printf '  %s\n' "${results[@]}"
if [ "$failed" -gt 0 ]; then
  echo "$failed pass(es) FAILED: see the sections above."
  exit 1
fi
echo "Every pass passed."
