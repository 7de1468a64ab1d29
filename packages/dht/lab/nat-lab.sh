#!/usr/bin/env bash
# A NAT lab of network namespaces: a DHT bootstrap on a "public" bridge, two hosts each behind its own
# NAT (nftables masquerade), and two Parley peers that find each other by topic through the DHT, then
# exchange acknowledged messages both ways. Needs root, ip and nft; touches nothing outside its own
# namespaces (none of its interfaces is in the root namespace), and removes them on every exit.
#
#   bash lab/nat-lab.sh [cone|random] [cone|random] [runs] [relay|-] [cut]
#     NAT of host 1, NAT of host 2; relay: the peers may use the public host's blind relay;
#     cut: host 1's link goes down after the first exchange and up again, and the peers must reconnect.
#
#   plab-pub: bridge br0, 100.64.0.0/24 ── plab-boot 100.64.0.2 (4 testnet DHT nodes, a blind relay)
#        ├── plab-nat1 100.64.0.11 ── 10.1.0.1/24 ── plab-h1 10.1.0.2 (peer "one", dials)
#        └── plab-nat2 100.64.0.12 ── 10.2.0.1/24 ── plab-h2 10.2.0.2 (peer "two")
#
# Prints one JSON line per run ({"nat1","nat2","ok","connectMs","remote",...}) and a summary line.
set -eEuo pipefail
cd "$(dirname "$0")"

NAT1=${1:-cone}
NAT2=${2:-cone}
RUNS=${3:-3}
RELAY=${4:-}
CUT=${5:-}
[[ $RELAY == - ]] && RELAY=""
NS=(plab-pub plab-boot plab-nat1 plab-nat2 plab-h1 plab-h2)
WORK=$(mktemp -d)
PIDS=()

for mode in "$NAT1" "$NAT2"; do
  [[ $mode == cone || $mode == random ]] || { echo "NAT mode must be cone or random, not $mode" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "the NAT lab needs root (network namespaces and nftables)" >&2; exit 2; }
command -v nft >/dev/null || { echo "the NAT lab needs nft: apt-get install nftables" >&2; exit 2; }
[[ -f ../dist/index.js ]] || { echo "build first: pnpm --filter @parley/dht... build" >&2; exit 2; }

teardown() {
  # Never `set +e` here for the rest of the script: this only runs on the way out.
  local pid ns
  local i
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Bounded: 3 s for a graceful stop, then SIGKILL. A deleted namespace does not end its processes.
  for ((i = 0; i < 30; i++)); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
cleanup() {
  teardown
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "lab failed at line $LINENO" >&2' ERR

in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# Waits (bounded: $3 tenths of a second, 20 s by default) for a line matching $2 in file $1.
wait_for_line() {
  local file=$1 pattern=$2 tenths=${3:-200} i
  for ((i = 0; i < tenths; i++)); do
    if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $file:" >&2
  cat "$file" >&2 || true
  return 1
}

nat_rules() {
  local public=$1 lan=$2 mode=$3 flags=''
  [[ $mode == random ]] && flags=' random,fully-random'
  # `in` and `fwd` are nft keywords: the chains are named otherwise.
  nft -f - <<EOF
table ip lab {
  chain postrouting_nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$public" masquerade$flags
  }
  chain forwarding {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "$lan" oifname "$public" accept
  }
  # Unsolicited packets to the router itself are dropped, as a home router does. Accepted, a hole punch
  # that arrives before our own outbound one would leave a conntrack entry for its tuple, and masquerade
  # would then map our outbound packet to another port: the punch fails.
  chain to_router {
    type filter hook input priority filter; policy accept;
    iifname "$public" ct state established,related accept
    iifname "$public" drop
  }
}
EOF
}

build() {
  teardown
  local ns
  for ns in "${NS[@]}"; do
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
  done
  # Each veth pair goes straight between two lab namespaces: nothing of the lab is in the root one.
  in_ns plab-pub ip link add br0 type bridge
  in_ns plab-pub ip link set br0 up
  local name
  for name in boot nat1 nat2; do
    ip link add "p-$name" netns plab-pub type veth peer name pub0 netns "plab-$name"
    in_ns plab-pub ip link set "p-$name" master br0 up
    in_ns "plab-$name" ip link set pub0 up
  done
  in_ns plab-boot ip addr add 100.64.0.2/24 dev pub0
  local i
  for i in 1 2; do
    in_ns "plab-nat$i" ip addr add "100.64.0.1$i/24" dev pub0
    ip link add lan0 netns "plab-nat$i" type veth peer name eth0 netns "plab-h$i"
    in_ns "plab-nat$i" ip addr add "10.$i.0.1/24" dev lan0
    in_ns "plab-nat$i" ip link set lan0 up
    in_ns "plab-nat$i" sysctl -qw net.ipv4.ip_forward=1
    in_ns "plab-h$i" ip addr add "10.$i.0.2/24" dev eth0
    in_ns "plab-h$i" ip link set eth0 up
    in_ns "plab-h$i" ip route add default via "10.$i.0.1"
  done
  in_ns plab-nat1 bash -c "$(declare -f nat_rules); nat_rules pub0 lan0 $NAT1"
  in_ns plab-nat2 bash -c "$(declare -f nat_rules); nat_rules pub0 lan0 $NAT2"
}

run_once() {
  local run=$1 built_ms start end
  start=$(date +%s%N)
  build
  end=$(date +%s%N)
  built_ms=$(((end - start) / 1000000))
  : >"$WORK/boot.log"
  : >"$WORK/two.log"
  ip netns exec plab-boot node bootstrap.mjs 100.64.0.2 >"$WORK/boot.log" 2>&1 &
  PIDS+=($!) # the pid of node itself: ip netns exec execs it
  wait_for_line "$WORK/boot.log" '^ready'
  local relay=''
  [[ $RELAY == relay ]] && relay=$(sed -n 's/^ready .* relay \([0-9a-f]*\)$/\1/p' "$WORK/boot.log")
  local topic="lab-$run-$RANDOM"
  ip netns exec plab-h2 node peer.mjs two 100.64.0.2:49737 "$topic" $relay >"$WORK/two.log" 2>&1 &
  PIDS+=($!) # the pid of node itself: ip netns exec execs it
  wait_for_line "$WORK/two.log" '"event":"joined"'
  # Bounded: peer.mjs gives up after 45 s (100 s with a cut), and timeout kills it at 120 s.
  : >"$WORK/one.log"
  LAB_CUT=$([[ $CUT == cut ]] && echo 1 || echo 0) ip netns exec plab-h1 timeout 120 \
    node peer.mjs one 100.64.0.2:49737 "$topic" $relay >"$WORK/one.log" 2>"$WORK/one.err" &
  local one=$!
  PIDS+=("$one")
  if [[ $CUT == cut ]]; then
    # Host 1's only link goes down once the first exchange is done, and comes back once the peer saw
    # its session die (the peer pings every 5 s and gives up on a link silent for 15 s).
    if wait_for_line "$WORK/one.log" '"event":"cut-now"' 600; then
      in_ns plab-h1 ip link set eth0 down
      wait_for_line "$WORK/one.log" '"event":"lost"' 600 || true
      in_ns plab-h1 ip link set eth0 up
      in_ns plab-h1 ip route replace default via 10.1.0.1
    fi
  fi
  wait "$one" || true
  local result
  result=$(grep '"event":"result"' "$WORK/one.log" | tail -1 || true)
  if [[ -z $result ]]; then
    result='{"event":"result","ok":false,"error":"peer one printed no result (its stderr follows)"}'
  fi
  if [[ $result != *'"ok":true'* ]]; then
    echo "--- peer one:" >&2
    cat "$WORK/one.log" "$WORK/one.err" >&2
    echo "--- peer two:" >&2
    cat "$WORK/two.log" >&2
  fi
  echo "{\"nat1\":\"$NAT1\",\"nat2\":\"$NAT2\",\"relay\":\"${relay:0:8}\",\"cut\":\"$CUT\",\"run\":$run,\"labBuildMs\":$built_ms,${result#\{}" | tee -a "$WORK/results"
  teardown
}

# Not in a subshell: the lab's processes must stay in PIDS, where teardown kills them.
: >"$WORK/results"
for ((run = 1; run <= RUNS; run++)); do run_once "$run"; done
ok=$(grep -c '"ok":true' "$WORK/results" || true)
failed=$((RUNS - ok))
echo "nat lab ($NAT1/$NAT2${RELAY:+, $RELAY}${CUT:+, $CUT}): $ok passed, $failed failed"
[[ $failed == 0 ]]
