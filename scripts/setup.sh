#!/usr/bin/env bash
# Set-up shared by `npm run demo` and `npm test`: installs pnpm and the dependencies when missing, then builds.
# Safe to run any number of times; a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pnpm >/dev/null 2>&1; then
  echo "setup: installing pnpm (npm install -g pnpm@10)"
  npm install -g pnpm@10 >/dev/null
fi

# --frozen-lockfile: install exactly what pnpm-lock.yaml says; fails instead of silently changing it.
pnpm install --frozen-lockfile --config.confirmModulesPurge=false --reporter=append-only

bash scripts/build.sh
