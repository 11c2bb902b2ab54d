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

# Cyrus IMAP 3.6 from Debian, arping for service IPs, rsyslog (the tests check the production log rule with it),
# nftables (the namespace cluster cuts links between two machines with it), etcd (the coordinator's replicated
# backend: the tests run real etcd members; etcdctl to look inside), prometheus (for its promtool: test/alerts.test.ts
# checks and unit-tests deploy/prometheus/alerts.yml with it, test/observe.test.ts parses /metrics with it; the
# policy-rc.d below keeps the server from starting), chromium (the status page is tested in headless Chromium),
# systemd (test/units.test.ts runs systemd-analyze verify on deploy/systemd's units; systemd-notify for sd_notify),
# libfaketime (the soak steps one machine's wall clock: network namespaces share the host's clock, so the agents of
# the soak's cluster see time through it).
# prometheus and chromium without their recommended packages (a node exporter, avahi, cups helpers: services the
# tests do not need).
# Debian would start its own cyrus, rsyslog and prometheus services on install: a policy-rc.d that says "no" keeps it
# from doing so (removed again if we put it there).
if [ ! -x /usr/lib/cyrus/bin/master ] || ! command -v arping >/dev/null 2>&1 || ! command -v rsyslogd >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v systemd-notify >/dev/null 2>&1 || [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: Cyrus is missing and installing it needs root (or sudo)" >&2; exit 1; }
    sudo=sudo
  fi
  echo "setup: installing Cyrus IMAP, etcd and tools (apt-get)"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT # also when the install fails
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    cyrus-imapd cyrus-replication cyrus-clients cyrus-admin sasl2-bin iputils-arping rsyslog nftables iproute2 etcd-server etcd-client systemd libfaketime >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium fonts-liberation >/dev/null
fi

bash scripts/build.sh
