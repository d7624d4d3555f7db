#!/usr/bin/env bash
# Install s3rver (an S3-compatible server in Node, the tests' second one beside moto's)
# into .venv/s3rver when missing, and print the path of its command.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.venv/s3rver"
bin="$dir/node_modules/.bin/s3rver"
if [ ! -x "$bin" ]; then
  command -v npm >/dev/null || { echo "s3rver-for-tests: npm (Node.js) is missing" >&2; exit 1; }
  echo "s3rver-for-tests: installing s3rver 3.7.1" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent s3rver@3.7.1 >&2
fi
echo "$bin"
