#!/usr/bin/env bash
# Create the project's virtual environment: scripts/venv.sh [BASE_PYTHON] [DIR]  (python3, .venv)
# On Debian, `python3 -m venv` needs the python3-venv package; it is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-python3}"
dir="${2:-.venv}"
[ -x "$dir/bin/python" ] && exit 0

if ! "$base" -m venv "$dir" 2>/dev/null; then
  rm -rf "$dir"
  version=$("$base" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  echo "installing python$version-venv (needed to create $dir)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "python$version-venv" >/dev/null \
    || $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  "$base" -m venv "$dir"
fi
"$dir/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
echo "created the virtual environment $dir ($("$dir/bin/python" --version)); activate it with: source $dir/bin/activate"
