#!/usr/bin/env bash
# Debian packages the test suite needs, installed only when missing (apt only as root):
#   redis-server  - the private Redis that `dropin dev` and the tests start
#   chromium      - the real browser the relay and join-page tests drive (headless)
# The calendar parsers (node, ical.js, libical) come from scripts/install-parsers.sh.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-system-deps: apt-get install ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "install-system-deps: missing ${missing[*]} and not root: install them by hand" >&2
    fi
fi
