#!/usr/bin/env bash
# Install axe-core (Deque's accessibility engine, MPL-2.0) into .venv/axe-core when
# missing, and print the path of axe.min.js, which the browser tests run in each page.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.venv/axe-core"
script="$dir/node_modules/axe-core/axe.min.js"
if [ ! -f "$script" ]; then
  command -v npm >/dev/null || { echo "axe-for-tests: npm (Node.js) is missing" >&2; exit 1; }
  echo "axe-for-tests: installing axe-core 4.14.1" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent axe-core@4.14.1 >&2
fi
echo "$script"
