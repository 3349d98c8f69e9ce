#!/usr/bin/env bash
# The figures of issue 12 (a ledger that scales), printed as markdown
# tables in one run. Not part of the tests: figures depend on the machine
# and its load (2 shared cores here). Every figure is a real `medwallet`
# process (peers are separate `medwallet peer` processes on loopback);
# CPU is user+system time, RSS the peak resident set.
#
#   scripts/scale-bench.sh                      # everything (long: 100k entries)
#   SIZES="1000 10000" scripts/scale-bench.sh   # the table at some sizes only
#   PARTS="table net reach" ...                 # which tables (default: all three)
#   NETS="100 10000" ...                        # network sizes (patients) of the second table
#   TIMEOUT=300 ...                             # cap of each step, in seconds
#   STARTS=9 ...                                # peer starts per network size (median)
#   BENCH_REV=main ...                          # what the header names as measured (default: HEAD)
#
# 1. table: the issue's table at SIZES entries (one patient and one
#    clinician: grants, accesses logged by the patient's serving peers in
#    their sub-feeds about it, revocations, written by
#    internal/tools/genledger with the consent code straight into the
#    ledger stores of the patient's wallet and of 6 peers, all serving the
#    patient): peer start, `audit verify`, `log`, `grants` (local ledger,
#    --offline; then `log` pulling the network's first), `sync` into a new
#    wallet from the 6 peers, and a small `record add` over the network.
# 2. net: one peer's start and one new wallet's `sync` while the network
#    holds 100 patients and while it holds NETS patients. Each patient has
#    3 serving peers (SERVING) and the network as many peers as it takes
#    for each to serve 100 patients (SERVED); each peer's data directory
#    holds what that peer keeps under need to know (its patients' feeds,
#    the sub-feeds about them, the feeds they name, its served set). The
#    patient's 3 serving peers run; one of them is the peer measured.
# 3. reach: revocation reach p50/p99 from the Go benchmarks that measure it
#    (every Benchmark*Reach* in p2p/... but gossip's, one iteration of
#    their own trials; Benchmark*GossipReach*, 200 iterations: their p50-ms
#    and p99-ms, and a row for each prefixed set, such as
#    BenchmarkRevocationReach's publish-p99-ms: the network's part alone).
#
# Needs /usr/bin/time (Debian package "time") and timeout (coreutils).
# Every step is bounded by TIMEOUT; processes it starts are stopped, and
# its temporary directories removed, on exit (also on failure and Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000 10000 100000}
PARTS=${PARTS:-table net reach}
NETS=${NETS:-100 10000}
TIMEOUT=${TIMEOUT:-300}
STARTS=${STARTS:-9}
NPEERS=6    # peers of the first table, all serving the patient
SERVING=3   # serving peers per patient in the second table
SERVED=100  # patients each peer serves in the second table

out=$(mktemp -d "${TMPDIR:-/tmp}/scale-bench.XXXXXX")
# genledger writes on tmpfs when there is one (fewer waits on the disk);
# the store is then copied.
scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "$out")/scale-bench-gen.XXXXXX")
pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$out" "$scratch"' EXIT
trap 'exit 130' INT TERM HUP

# bounded CMD...: CMD, stopped after TIMEOUT seconds.
bounded() { timeout -s INT -k 10 "$TIMEOUT" "$@"; }

echo "building medwallet and genledger..." >&2
timeout -k 10 $((TIMEOUT + 600)) go build -o "$out/medwallet" ./cmd/medwallet
(cd internal/tools/genledger && timeout -k 10 $((TIMEOUT + 600)) go build -o "$out/genledger" .)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
mw=$out/medwallet
export MEDWALLET_KEYRING_BACKEND=file MEDWALLET_PASSPHRASE=bench MEDWALLET_EXPORT_PASSPHRASE=bench
unset MEDWALLET_HOME MEDWALLET_NETWORK
tck=$(getconf CLK_TCK)
num() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

# measure NAME CMD...: runs CMD under /usr/bin/time and timeout; the result
# goes to $out/NAME.{time,err,rc}.
measure() {
  local name=$1; shift
  set +e
  /usr/bin/time -v -o "$out/$name.time" timeout -s INT -k 10 "$TIMEOUT" "$@" > "$out/$name.out" 2> "$out/$name.err"
  echo $? > "$out/$name.rc"
  set -e
}
cpu_of() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$out/$1.time"; }
rss_of() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2/1024 }' "$out/$1.time"; }
wall_of() { awk -F': ' '/Elapsed \(wall clock\)/ { n=split($2, a, ":"); s=0; for (i=1; i<=n; i++) s=s*60+a[i]; printf "%.1f", s }' "$out/$1.time"; }
# cell NAME [wall]: "CPU s, RSS MiB" (and wall), or why there is no figure.
cell() {
  local rc; rc=$(cat "$out/$1.rc")
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "timeout >${TIMEOUT}s"; return; fi
  if [ "$rc" != 0 ]; then
    # The error line, and the detail behind it (the commands run with --verbose).
    local msg detail
    msg=$(grep -m1 '^medwallet: error: ' "$out/$1.err" | sed 's/^medwallet: error: //' | cut -c1-90)
    detail=$(grep -m1 '^medwallet: detail: ' "$out/$1.err" | sed 's/^medwallet: detail: //' | cut -c1-240)
    [ -z "$msg" ] && msg=$(head -1 "$out/$1.err" | cut -c1-90)
    echo "fails: \"$msg\"${detail:+ ($detail)}" | sed 's/|/\\|/g'
    return
  fi
  local s; s="$(cpu_of "$1") s, $(rss_of "$1") MiB"
  [ "${2:-}" = wall ] && s="$s ($(wall_of "$1") s wall)"
  echo "$s"
}

# start_peer I [ARGS...]: starts peer I on $net/pI in the background.
start_peer() {
  local i=$1; shift
  rm -f "$net/p$i.addr"
  "$mw" peer --data "$net/p$i" --listen /ip4/127.0.0.1/tcp/0 --mdns=false --dht=false \
    --log-level error --addr-file "$net/p$i.addr" "$@" > /dev/null 2> "$net/p$i.log" &
  pids+=($!)
  eval "pid_$i=$!"
}
# wait_peer I: waits (TIMEOUT at most) until peer I listens; prints its
# start figures "CPU s, RSS MiB (wall s)" as the kernel counts them then,
# and writes the CPU seconds to $net/pI.cpu. CPU is the run time of the
# process's threads in nanoseconds (/proc/PID/task/*/schedstat) where the
# kernel gives it, else user+system time in clock ticks.
wait_peer() {
  local i=$1 pid t0 t1 ns; eval "pid=\$pid_$i"; t0=${2:-$(date +%s.%N)}
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until [ -s "$net/p$i.addr" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "fails: \"$(head -c 90 "$net/p$i.log")\""; return 1; fi
    if [ "$(date +%s)" -ge $deadline ]; then echo "timeout >${TIMEOUT}s"; return 1; fi
    sleep 0.02
  done
  t1=$(date +%s.%N)
  ns=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }')
  awk -v tck="$tck" -v ns="$ns" -v stat="$(cut -d')' -f2- "/proc/$pid/stat")" \
    'BEGIN { split(stat, f, " "); printf "%.3f\n", (ns > 0) ? ns / 1e9 : (f[12]+f[13])/tck }' > "$net/p$i.cpu"
  awk -v cpu="$(cat "$net/p$i.cpu")" -v t0="$t0" -v t1="$t1" \
    -v hwm="$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")" \
    'BEGIN { printf "%.2f s, %.0f MiB (%.1f s wall)", cpu, hwm/1024, t1-t0 }'
}

# network N MORE PEERS K REAL: a fresh patient and clinician (key
# exports), a ledger of N entries about the patient plus MORE more
# patients, placed by genledger on a network of PEERS peers, K serving each
# patient; the first REAL peers (the patient's serving peers, peer 1 among
# them) get a data directory $net/pI with what they keep, and the
# patient's home what its wallet holds. Returns 1 (the error in $genfail)
# if a step fails.
network() {
  local n=$1 more=$2 npeers=$3 k=$4 real=$5
  net=$out/net-$n-$more
  genfail=
  mkdir -p "$net"
  if ! { bounded "$mw" --home "$net/alice" init --name Alice > /dev/null 2>&1 &&
    bounded "$mw" --home "$net/clin" init --name Clin --role clinician > /dev/null 2>&1 &&
    bounded "$mw" --home "$net/alice" contact add Clin "$(bounded "$mw" --home "$net/clin" whoami --card)" > /dev/null &&
    bounded "$mw" --home "$net/alice" key export --out "$net/alice.key" > /dev/null 2>&1 &&
    bounded "$mw" --home "$net/clin" key export --out "$net/clin.key" > /dev/null 2>&1; }; then
    genfail="setting up the wallets fails"; return 1
  fi
  local peers=() i
  for i in $(seq "$real"); do peers+=(-peer "$net/p$i"); done
  echo "generating $n entries and $more more patients on $npeers peers..." >&2
  if ! bounded "$out/genledger" -patient "$net/alice.key" -clinician "$net/clin.key" "${peers[@]}" \
    -peers "$npeers" -k "$k" -entries "$n" -patients "$more" -home "$net/alice" -scratch "$scratch" \
    > "$net/gen.txt" 2> "$net/gen.err"; then
    genfail="genledger fails: $(head -c 90 "$net/gen.err")"; return 1
  fi
}

# held I: what peer I was given, "N entries, M patients served".
held() { sed -n "s|^peer $net/p$1: ||p" "$net/gen.txt"; }

# peers_up N: starts peer 1 alone (its start is the figure, in $start),
# then peers 2..N, and writes the network file. Returns 1 if a peer fails.
peers_up() {
  local n=$1 i t0; t0=$(date +%s.%N)
  start_peer 1
  start=$(wait_peer 1 "$t0") || return 1
  for i in $(seq 2 "$n"); do start_peer "$i" --bootstrap "$(head -1 "$net/p1.addr")"; done
  for i in $(seq 2 "$n"); do wait_peer "$i" > /dev/null || return 1; done
  printf '{"version":1,"peers":[%s]}\n' "$(for i in $(seq "$n"); do printf '"%s",' "$(head -1 "$net/p$i.addr")"; done | sed 's/,$//')" > "$net/network.json"
}

# start_once: starts peer 1 of $net alone and stops it; appends "CPU|figures"
# to $net/starts. Returns 1 if it fails (then $net/startfail says why).
start_once() {
  local t0 fig; t0=$(date +%s.%N)
  start_peer 1
  if ! fig=$(wait_peer 1 "$t0"); then echo "$fig" > "$net/startfail"; stop_all; return 1; fi
  stop_all
  echo "$(cat "$net/p1.cpu")|$fig" >> "$net/starts"
}

# fresh_wallet NAME: a new home holding the patient's identity (key import).
fresh_wallet() {
  bounded "$mw" --home "$net/$1" key import "$net/alice.key" > /dev/null 2>&1 || true
  cp "$net/network.json" "$net/$1/network.json" 2>/dev/null || true
}

tables=()
if [[ " $PARTS " == *" table "* ]]; then
  rows=()
  for n in $SIZES; do
    if ! network "$n" 0 $NPEERS $NPEERS $NPEERS; then
      rows+=("| $(num "$n") | $genfail | | | | | | |")
      rm -rf "$net"; continue
    fi
    echo "measuring at $n entries..." >&2
    export MEDWALLET_NETWORK="$net/network.json"
    if ! peers_up $NPEERS; then
      rows+=("| $(num "$n") | $start | | | | | | |")
      stop_all; continue
    fi
    measure "audit-$n" "$mw" --verbose --home "$net/alice" audit verify --offline
    measure "log-$n" "$mw" --verbose --home "$net/alice" log --offline
    measure "grants-$n" "$mw" --verbose --home "$net/alice" grants --offline
    measure "lognet-$n" "$mw" --verbose --home "$net/alice" log
    fresh_wallet "new"
    measure "sync-$n" "$mw" --verbose --home "$net/new" sync
    printf '{"resourceType":"Bundle","type":"collection","entry":[]}\n' > "$net/small.json"
    measure "add-$n" "$mw" --verbose --home "$net/alice" record add "$net/small.json"
    rows+=("| $(num "$n") | $start | $(cell "audit-$n") | $(cell "log-$n") | $(cell "grants-$n") | $(cell "lognet-$n" wall) | $(cell "sync-$n" wall) | $(cell "add-$n" wall) |")
    stop_all
    rm -rf "$net"
  done
  tables+=("$(printf '%s\n' "### Commands and peer start by ledger size (one patient, one clinician; 6 peer processes)" "" \
    "| entries | peer start (CPU, RSS, wall) | \`audit verify\` (CPU, RSS) | \`log\` (CPU, RSS) | \`grants\` (CPU, RSS) | \`log\` pulling first | \`sync\` into a new wallet, 6 peers | small \`record add\` over the network |" \
    "| --- | --- | --- | --- | --- | --- | --- | --- |" "${rows[@]}")")
fi

if [[ " $PARTS " == *" net "* ]]; then
  rows=()
  cpus=()
  declare -A netof npeersof
  good=()
  for p in $NETS; do
    # The patient's own story is 40 entries; the rest of the network is
    # p-1 more patients. SERVING peers serve each patient, and the network
    # has as many peers as it takes for each to serve SERVED patients.
    npeers=$(( p * SERVING / SERVED ))
    [ "$npeers" -lt $SERVING ] && npeers=$SERVING
    npeersof[$p]=$npeers
    if ! network 40 $((p - 1)) "$npeers" $SERVING $SERVING; then
      rows+=("| $(num "$p") | $npeers | $genfail | | | |")
      rm -rf "$net"; continue
    fi
    netof[$p]=$net
    good+=("$p")
  done
  # Peer 1 of each network starts alone STARTS times, the networks in turn
  # (so that the machine's load weighs on each alike).
  echo "starting peer 1 of each network $STARTS times..." >&2
  for r in $(seq "$STARTS"); do
    for p in "${good[@]}"; do
      net=${netof[$p]}
      [ -f "$net/startfail" ] || start_once || true
    done
  done
  for p in "${good[@]}"; do
    net=${netof[$p]}
    npeers=${npeersof[$p]}
    if [ -f "$net/startfail" ]; then
      rows+=("| $(num "$p") | $npeers | $(held 1) | $(cat "$net/startfail") | | |")
      rm -rf "$net"; continue
    fi
    # The start with the median CPU.
    med=$(sort -n "$net/starts" | sed -n "$(( (STARTS + 1) / 2 ))p")
    cpus+=("$p ${med%%|*}")
    med=${med#*|}
    echo "measuring the sync in a network of $p patients..." >&2
    export MEDWALLET_NETWORK="$net/network.json"
    if ! peers_up $SERVING; then
      rows+=("| $(num "$p") | $npeers | $(held 1) | $med | starting the peers: $start | |")
      stop_all; rm -rf "$net"; continue
    fi
    fresh_wallet "new"
    measure "netsync-$p" "$mw" --verbose --home "$net/new" sync
    size="-"
    [ -f "$net/new/ledger.db" ] && size="$(du -k "$net/new/ledger.db" | awk '{ printf "%.1f MiB", $1/1024 }'), $(bounded "$mw" --home "$net/new" ledger export "$net/new.export" --json 2>/dev/null | sed -n 's/.*"entries": *\([0-9]*\).*/\1 entries/p')"
    rows+=("| $(num "$p") | $npeers | $(held 1) | $med | $(cell "netsync-$p" wall) | $size |")
    stop_all
    rm -rf "$net"
  done
  verdict=
  if [ ${#cpus[@]} -ge 2 ]; then
    verdict=$(printf '%s\n' "${cpus[@]}" | awk 'NR == 1 { p0 = $1; c0 = $2 } END {
      d = (c0 > 0) ? 100 * ($2 - c0) / c0 : 0
      printf "Peer start CPU (median) with %s patients in the network against %s: %.3f s against %.3f s, %+.0f%% (%s the 10%% the issue allows).", $1, p0, $2, c0, d, (d <= 10 && d >= -10) ? "within" : "NOT within" }')
  fi
  tables+=("$(printf '%s\n' "### One peer's start and one wallet's \`sync\` by network size" "" \
    "Each patient has $SERVING serving peers; the network has as many peers as it takes for each to serve $SERVED patients, and each peer's data directory holds only what it keeps (need to know). Peer start: peer 1 alone, median of $STARTS starts (by CPU); \`sync\`: a new wallet of the patient, from its $SERVING serving peers." "" \
    "| patients in the network | peers in the network | what peer 1 keeps | peer start (CPU, RSS, wall) | \`sync\` into a new wallet, $SERVING peers | wallet ledger after \`sync\` |" \
    "| --- | --- | --- | --- | --- | --- |" "${rows[@]}" ${verdict:+"" "$verdict"})")
fi

if [[ " $PARTS " == *" reach "* ]]; then
  echo "running the revocation reach benchmarks..." >&2
  rows=()
  # Revocation benchmarks run their own trials (one iteration); gossip
  # reach is one message per iteration.
  set +e
  # Build the test binaries first (bounded like the build), so that the
  # benchmarks' own TIMEOUT is spent running them.
  timeout -k 10 $((TIMEOUT + 600)) go test -run '^$' ./p2p/... > "$out/reach-build.txt" 2>&1 ||
    rows+=("| building the p2p tests | fails: $(grep -m1 -v '^ok\|^?' "$out/reach-build.txt" | cut -c1-120 | sed 's/|/\\|/g') | | |")
  timeout -k 10 "$TIMEOUT" go test -run '^$' -bench 'Reach' -skip 'Gossip' -benchtime 1x ./p2p/... > "$out/reach.txt" 2>&1
  rc1=$?
  timeout -k 10 "$TIMEOUT" go test -run '^$' -bench 'GossipReach' -benchtime 200x ./p2p/... > "$out/gossip.txt" 2>&1
  rc2=$?
  set -e
  while IFS='|' read -r name p50 p99 maxms; do
    rows+=("| $name | $p50 | $p99 | $maxms |")
  done < <(cat "$out/reach.txt" "$out/gossip.txt" | awk '
    /^Benchmark/ && /p99-ms/ {
      name=$1; sub(/-[0-9]+$/, "", name); p50="-"; p99="-"; mx="-"
      for (i=3; i<NF; i++) {
        if ($(i+1) == "p50-ms") p50=$i " ms"; if ($(i+1) == "p99-ms") p99=$i " ms"; if ($(i+1) == "max-ms") mx=$i " ms"
      }
      print name "|" p50 "|" p99 "|" mx
      # Prefixed figures (call-p99-ms, publish-p99-ms...): one row each.
      split("", pre)
      for (i=3; i<NF; i++) if ($(i+1) ~ /^[a-z]+-p99-ms$/) { q=$(i+1); sub(/-p99-ms$/, "", q); pre[q]=1 }
      for (q in pre) {
        a="-"; b="-"; c="-"
        for (i=3; i<NF; i++) {
          if ($(i+1) == q "-p50-ms") a=$i " ms"; if ($(i+1) == q "-p99-ms") b=$i " ms"; if ($(i+1) == q "-max-ms") c=$i " ms"
        }
        print name " (" q "-*)|" a "|" b "|" c
      }
    }
    # A benchmark that fails: its name and the first line of its message.
    /^--- FAIL: Benchmark/ { failed=$3; next }
    failed != "" { msg=$0; sub(/^[ \t]+/, "", msg); gsub(/\|/, "\\|", msg); print failed "|fails: " substr(msg, 1, 160) "||"; failed="" }')
  [ "$rc1" = 124 ] || [ "$rc1" = 137 ] && rows+=("| revocation reach benchmarks | timeout >${TIMEOUT}s | | |")
  [ "$rc2" = 124 ] || [ "$rc2" = 137 ] && rows+=("| gossip reach benchmarks | timeout >${TIMEOUT}s | | |")
  [ ${#rows[@]} = 0 ] && rows=("| (no reach benchmark reported p99-ms) | | | |")
  tables+=("$(printf '%s\n' "### Revocation reach (Go benchmarks, loopback peers in one process; goal: p99 under 100 ms to every serving peer)" "" \
    "| benchmark | p50 | p99 | max |" "| --- | --- | --- | --- |" "${rows[@]}")")
fi

printf '\n%s\n' "Measured until $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, ${BENCH_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')} (load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end); CPU = user+system, RSS = peak; \`audit verify\`, \`log\` and \`grants\` read the local ledger (--offline)."
for t in "${tables[@]}"; do printf '\n%s\n' "$t"; done
