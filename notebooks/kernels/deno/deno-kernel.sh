#!/usr/bin/env bash
# Jupyter kernel launcher for the repo's Deno (kernelspec: notebooks/kernels/deno/kernel.json).
# Prefers the pinned deno in <repo>/.tools, then $DENO_BIN, then `deno` on PATH.
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: deno-kernel.sh <connection_file>" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [[ -x "$root/.tools/node_modules/.bin/deno" ]]; then
  deno="$root/.tools/node_modules/.bin/deno"
elif [[ -n "${DENO_BIN:-}" && -x "${DENO_BIN}" ]]; then
  deno="$DENO_BIN"
elif command -v deno >/dev/null 2>&1; then
  deno="$(command -v deno)"
else
  echo "deno-kernel.sh: no deno in $root/.tools/node_modules/.bin, \$DENO_BIN or PATH" >&2
  exit 127
fi
export NO_COLOR="${NO_COLOR:-1}"
exec "$deno" jupyter --kernel --conn "$1"
