#!/usr/bin/env bash
# Fails when nbdev-export would change alignkit/: the notebooks in nbs/ are the source of truth.
set -euo pipefail
BIN=${1:-.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -a alignkit "$tmp/before"
"$BIN/nbdev-export"
if ! diff -r -q -x __pycache__ "$tmp/before" alignkit; then
  echo "alignkit/ was out of sync with nbs/: run nbdev-export and commit both (alignkit/ now holds the export)." >&2
  exit 1
fi
echo "sync check: alignkit/ matches nbs/"
