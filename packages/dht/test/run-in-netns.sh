#!/bin/sh
# Runs vitest inside a network namespace of its own with only loopback up. HyperDHT also tries this
# machine's own interface addresses, so DHT tests must never run where there is a route out.
# As root or not: `unshare -r` maps the caller to root inside a new user namespace. Loopback gets the
# multicast flag so the mDNS tests (--lan) can run on it, inside this namespace.
set -eu
if [ "${PARLEY_IN_NETNS:-}" = 1 ]; then
  ip link set lo up
  ip link set lo multicast on
  exec node ../../scripts/vitest-run.mjs "$@"
fi
PARLEY_IN_NETNS=1 exec unshare --map-root-user --net sh "$0" "$@"
