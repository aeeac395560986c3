#!/usr/bin/env bash
# The whole test suite: lint and format check, then every *.test.js under dist/ with node:test.
set -euo pipefail
cd "$(dirname "$0")/.."
npx biome check src bench scripts
mapfile -t files < <(find dist -name '*.test.js' | sort)
exec node --test --test-reporter=spec "${files[@]}"
