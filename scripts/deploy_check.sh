#!/usr/bin/env bash
# Django's deployment checklist with production settings; warnings fail it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Production has Web Push keys (else pickup.W005): a fresh pair, made as an operator makes one.
set -a
eval "$(DEBUG=true .venv/bin/python manage.py vapid_keys --subject mailto:kitchen@pickup.example.com)"
set +a
DEBUG=false \
SECRET_KEY="deploy-check-$(head -c 48 /dev/urandom | base64 | tr -d '/+=')" \
ALLOWED_HOSTS=pickup.example.com \
DATABASE_URL=postgres://pickup@db.example.com/pickup \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
