#!/usr/bin/env bash
# The whole test suite: deployment checks, pytest on SQLite (it starts its own
# Redis), then the order and alert tests again on PostgreSQL where one answers.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests drive Debian's Chromium (Playwright cannot fetch its own here).
if [ ! -x /usr/bin/chromium ] && [ -z "${PICKUP_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "== Installing Debian's chromium for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium > /dev/null
  else
    echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests will fail)." >&2
  fi
fi

# Translations are compiled here, never committed.
DEBUG=true .venv/bin/python manage.py compilemessages --ignore .venv -v 0

bash scripts/deploy_check.sh

.venv/bin/python -m pytest "$@"

# PostgreSQL: PICKUP_TEST_POSTGRES_URL, or the machine's local server. CI must
# reach it; a developer machine without it skips this pass and says so.
postgres_url="${PICKUP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if .venv/bin/python -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$postgres_url" 2>/dev/null; then
  echo "== The same order and alert tests on PostgreSQL ($postgres_url)"
  PICKUP_TEST_DATABASE_URL="$postgres_url" .venv/bin/python -m pytest tests/orders tests/notifications \
    tests/processes/test_database_connections.py "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL at $postgres_url does not answer; CI must run the PostgreSQL tests." >&2
  exit 1
else
  echo "== PostgreSQL at $postgres_url does not answer: PostgreSQL pass skipped (set PICKUP_TEST_POSTGRES_URL)."
fi
