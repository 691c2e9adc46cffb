#!/usr/bin/env bash
# The Debian packages the README's commands need besides Python: GNU gettext
# (msgfmt compiles the translations, for `make run` and `make test`) and, for
# the browser tests, Chromium (Playwright cannot fetch its own here) and
# a Chinese font (fonts-wqy-microhei) for the screenshots, and
# dbus-daemon (the Web Push test sees and taps Chromium's notifications
# through a desktop notification server on a private D-Bus), and nginx for
# `make run-cluster` and the tests on that topology.
# Installed with apt-get when running as root; otherwise the one command to
# run is printed. Usage: scripts/prerequisites.sh msgfmt [chromium] [dbus] [nginx]
set -euo pipefail

missing=()
for need in "$@"; do
  case "$need" in
    msgfmt) command -v msgfmt > /dev/null || missing+=(gettext) ;;
    chromium) [ -x /usr/bin/chromium ] || [ -n "${PICKUP_CHROMIUM:-}" ] || missing+=(chromium)
              # A Chinese font, or the Chinese screenshots show empty boxes for every character.
              [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei) ;;
    dbus) command -v dbus-daemon > /dev/null || missing+=(dbus-daemon) ;;
    # The binary only: run-cluster starts it with its own configuration, never as a service.
    nginx) [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;
    *) echo "prerequisites.sh: unknown need '$need'" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get > /dev/null; then
  echo "== Installing Debian's ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" > /dev/null
else
  echo "Missing: ${missing[*]}. Run: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
