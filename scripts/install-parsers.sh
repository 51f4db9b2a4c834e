#!/usr/bin/env bash
# Installs the independent calendar parsers that tests/domain/test_ical_parsers.py runs:
#   ical.js  (npm, Mozilla's parser used by Thunderbird) into tests/parsers/node_modules
#   libical  (Debian gir1.2-ical-3.0 + python3-gi, driven by the system /usr/bin/python3)
# vobject comes from pip (the project's test extras).
# Idempotent: it installs only what is missing, and touches apt only when running as root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
parsers="$here/tests/parsers"

apt_missing=()
have_libical() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 - <<'PY' >/dev/null 2>&1
import gi
gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: F401
PY
}
if ! have_libical; then
    apt_missing+=(python3 python3-gi gir1.2-ical-3.0)
fi
if ! command -v node >/dev/null 2>&1; then
    apt_missing+=(nodejs)
fi
# nodejs from other sources (e.g. NodeSource) bundles npm and conflicts with Debian's npm
# package, so ask apt for npm only when there is none at all.
if ! command -v npm >/dev/null 2>&1; then
    apt_missing+=(npm)
fi

if [ "${#apt_missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-parsers: apt-get install ${apt_missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    else
        echo "install-parsers: missing ${apt_missing[*]} and not root: install them by hand" >&2
    fi
fi

if command -v npm >/dev/null 2>&1; then
    if [ ! -f "$parsers/node_modules/ical.js/package.json" ]; then
        echo "install-parsers: installing ical.js into tests/parsers/node_modules" >&2
        if [ -f "$parsers/package-lock.json" ]; then
            npm ci --prefix "$parsers" --no-audit --no-fund --loglevel=error
        else
            npm install --prefix "$parsers" --no-audit --no-fund --loglevel=error
        fi
    fi
fi
