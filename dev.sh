#!/usr/bin/env bash
# sigil's two commands (see README.md):
#   ./dev.sh demo [sigil demo options]   install if needed, run the main job on embedded Spark
#   ./dev.sh test [pytest options]       install if needed, run the test suite
# Both create .venv if it is missing and install the pinned versions in constraints.txt;
# test also creates .venv-airflow (pipelines/airflow/requirements.txt, constraints.txt).
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

# venv DIR FILE... -- PIP_ARGS...: create DIR if missing and pip-install PIP_ARGS into it
# unless it was installed from these very FILEs (a stamp holds their hash)
venv() {
  local dir=$1 files=() want; shift
  while [ "$1" != "--" ]; do files+=("$1"); shift; done; shift
  [ -x "$dir/bin/python" ] || "$(python_311)" -m venv "$dir"
  want=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$dir/.sigil-installed" 2>/dev/null)" != "$want" ]; then
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
    echo "$want" > "$dir/.sigil-installed"
  fi
}

install() { venv .venv pyproject.toml constraints.txt -- -c constraints.txt -e ".[dev]"; }

# Airflow for pipelines/airflow/ (and tests/test_airflow.py), apart from sigil: its Spark
# provider brings pyspark-client, whose pyspark/ package would overwrite sigil's pyspark
install_airflow() {
  local req=pipelines/airflow
  venv .venv-airflow $req/requirements.txt $req/constraints.txt -- -r $req/requirements.txt -c $req/constraints.txt
}

cmd="${1:-}"; shift || true
case "$cmd" in
  demo) check_java; install; exec .venv/bin/sigil demo "$@" ;;
  test) check_java; install; install_airflow; exec .venv/bin/python -m pytest "$@" ;;
  *) die "usage: ./dev.sh demo|test [options]" ;;
esac
