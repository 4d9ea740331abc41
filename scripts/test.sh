#!/usr/bin/env bash
# The whole test suite: setup, lint, typecheck, unit tests, e2e tests.
# `scripts/test.sh unit` runs only the fast part.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"
cd "$SKIFF_ROOT"
bash scripts/setup.sh
what="${1:-all}"

echo "== lint (biome)"
biome check .
echo "== typecheck (tsc)"
tsc --noEmit -p tsconfig.json
tsc --noEmit -p src/dashboard/app/tsconfig.json  # the browser app (DOM types)

# Node's test runner runs .ts files directly (type stripping), so tests need
# no build step. Each file runs in its own process; two at a time on 2 cores.
# No --test-force-exit: on Node 24.22 it ends a file's process before all
# of its tests have run (strategic.test.ts ran 23 to 63 of its 63 tests,
# with no failure reported), so tests went silently missing. A file whose
# setup fails must still close what it opened in after().
echo "== unit tests"
node --test --test-concurrency=2 'src/**/*.test.ts'
if [ "$what" = all ] || [ "$what" = e2e ]; then
  echo "== e2e tests"
  node --test --test-concurrency=1 'test/e2e/**/*.test.ts'
fi
