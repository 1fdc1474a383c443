#!/usr/bin/env bash
# Installs what the tests need (venv, package with test extras, Debian's chromium for the
# browser tests) and runs the whole suite. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv || exit 1
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' || exit 1
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium) >/dev/null || {
    echo "could not install Debian's chromium (needed by the browser tests)" >&2; exit 1; }
fi
.venv/bin/python -m pytest "$@"
rc=$?
# pytest exit 5 = "no tests collected" (e.g. a marker selecting none): not a failure.
[ "$rc" -eq 5 ] && rc=0
exit "$rc"
