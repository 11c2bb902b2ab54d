#!/usr/bin/env bash
# Generates the gRPC types from proto/ and compiles every package (incremental: quick when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."
gen=packages/shared/src/generated
if [ ! -f "$gen/slotctl.ts" ] || [ proto/slotctl.proto -nt "$gen/slotctl.ts" ]; then
  rm -rf "$gen"
  pnpm --silent --filter @slotctl/shared run gen >/dev/null
fi
pnpm exec tsc -b
# the contract parsed once here rather than by every process at start (packages/shared/src/proto.ts); the script
# compares the .proto's hash with the one in the file and returns at once when they match
(cd packages/shared && node scripts/contract-json.mjs)
