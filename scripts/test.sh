#!/usr/bin/env bash
# Installs what the tests need (venv, package with test extras, Debian's chromium for the
# browser tests) and runs the whole suite. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv || exit 1
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' || exit 1
# Debian's chromium (browser tests) and postgresql (the store's tests on a PostgreSQL server).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}") >/dev/null || {
    echo "could not install Debian's ${need[*]} (needed by the browser and PostgreSQL tests)" >&2; exit 1; }
fi
# duckdb's bindings (nanobind) print reference-leak notices at interpreter exit, after pytest's
# summary; they are not test results, so keep them out of the closing lines.
.venv/bin/python -m pytest "$@" 2>&1 | grep --line-buffered -v -E '^nanobind: |^ - leaked |^ - \.\.\. skipped remainder|^See https://nanobind'
rc=${PIPESTATUS[0]}
# pytest exit 5 = "no tests collected" (e.g. a marker selecting none): not a failure.
[ "$rc" -eq 5 ] && rc=0
exit "$rc"
