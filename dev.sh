#!/usr/bin/env bash
# sigil's two commands (see README.md):
#   ./dev.sh demo [sigil demo options]   install if needed, run the main job on embedded Spark
#   ./dev.sh test [pytest options]       install if needed, run the test suite
# Both create .venv if it is missing and install the pinned versions in constraints.txt.
set -euo pipefail
cd "$(dirname "$0")"

die() { echo "dev.sh: $*" >&2; exit 1; }

python_311() {
  for py in python3.11 python3 python; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$py"; return
    fi
  done
  die "Python 3.11 is required (python3.11 or python3 on PATH)"
}

check_java() {
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  command -v "$java" >/dev/null 2>&1 || die "Java 17 or newer is required by Spark 4: install a JDK 17 and put java on PATH or set JAVA_HOME"
  local major
  major=$("$java" -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -n1)
  [ "${major:-0}" -ge 17 ] || die "Java 17 or newer is required by Spark 4, found Java ${major:-unknown} at $(command -v "$java")"
}

install() {
  [ -x .venv/bin/python ] || "$(python_311)" -m venv .venv
  local stamp=.venv/.sigil-installed want
  want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
  demo) check_java; install; exec .venv/bin/sigil demo "$@" ;;
  test) check_java; install; exec .venv/bin/python -m pytest "$@" ;;
  *) die "usage: ./dev.sh demo|test [options]" ;;
esac
