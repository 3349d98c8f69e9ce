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
#   BENCH_REV=main ...                          # what the header names as measured (default: HEAD)
#
# 1. table: the issue's table at SIZES entries (one patient and one
#    clinician: grants, accesses by the peers, revocations, written by
#    internal/tools/genledger with the consent code straight into the
#    ledger stores of the patient's wallet and of 6 peers): peer start,
#    `audit verify`, `log`, `grants` (local ledger, --offline; then `log`
#    pulling the network's first), `sync` into a new wallet from the 6
#    peers, and a small `record add` over the network.
# 2. net: one peer's start and one new wallet's `sync` while the network
#    holds 100 patients and while it holds NETS patients (the first number
#    of NETS should be 100: the patients a peer serves). Each peer's data
#    directory holds what the code keeps today: every entry of every author
#    (the one generated store is copied into every peer; see docs/bench.md).
# 3. reach: revocation reach p50/p99 from the Go benchmarks that measure it
#    (every Benchmark*RevocationReach* in p2p/..., one iteration of their
#    own trials, and Benchmark*GossipReach*, 200 iterations: their p50-ms
#    and p99-ms).
#
# Needs /usr/bin/time (Debian package "time") and timeout (coreutils).
# Processes it starts are stopped, and its temporary directories removed,
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000 10000 100000}
PARTS=${PARTS:-table net reach}
NETS=${NETS:-100 10000}
TIMEOUT=${TIMEOUT:-300}
NPEERS=6

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
trap 'exit 130' INT TERM

echo "building medwallet and genledger..." >&2
go build -o "$out/medwallet" ./cmd/medwallet
(cd internal/tools/genledger && go build -o "$out/genledger" .)
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
# start figures "CPU s, RSS MiB (wall s)" as the kernel counts them then.
wait_peer() {
  local i=$1 pid t0 t1; eval "pid=\$pid_$i"; t0=${2:-$(date +%s.%N)}
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until [ -s "$net/p$i.addr" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "fails: \"$(head -c 90 "$net/p$i.log")\""; return 1; fi
    if [ "$(date +%s)" -ge $deadline ]; then echo "timeout >${TIMEOUT}s"; return 1; fi
    sleep 0.02
  done
  t1=$(date +%s.%N)
  awk -v tck="$tck" -v t0="$t0" -v t1="$t1" -v stat="$(cut -d')' -f2- "/proc/$pid/stat")" \
    -v hwm="$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")" \
    'BEGIN { split(stat, f, " "); printf "%.2f s, %.0f MiB (%.1f s wall)", (f[12]+f[13])/tck, hwm/1024, t1-t0 }'
}

# network N PATIENTS: a fresh patient and clinician (key exports), NPEERS
# peer data directories and a ledger of N entries about the patient plus
# PATIENTS more patients, copied into every peer and the patient's home.
network() {
  local n=$1 more=$2
  net=$out/net-$n-$more
  mkdir -p "$net"
  "$mw" --home "$net/alice" init --name Alice > /dev/null 2>&1
  "$mw" --home "$net/clin" init --name Clin --role clinician > /dev/null 2>&1
  "$mw" --home "$net/alice" contact add Clin "$("$mw" --home "$net/clin" whoami --card)" > /dev/null
  "$mw" --home "$net/alice" key export --out "$net/alice.key" > /dev/null 2>&1
  "$mw" --home "$net/clin" key export --out "$net/clin.key" > /dev/null 2>&1
  local peers=() i
  for i in $(seq $NPEERS); do peers+=(-peer "$net/p$i"); done
  rm -f "$scratch/ledger.db"
  echo "generating $n entries and $more more patients..." >&2
  "$out/genledger" -patient "$net/alice.key" -clinician "$net/clin.key" "${peers[@]}" \
    -entries "$n" -patients "$more" -out "$scratch/ledger.db" > "$net/gen.txt"
  for i in $(seq $NPEERS); do cp "$scratch/ledger.db" "$net/p$i/ledger.db"; done
  cp "$scratch/ledger.db" "$net/alice/ledger.db"
  rm -f "$scratch/ledger.db"
}

# peers_up: starts peer 1 alone (its start is the figure, in $start), then
# the others, and writes the network file. Returns 1 if a peer fails.
peers_up() {
  local i t0; t0=$(date +%s.%N)
  start_peer 1
  start=$(wait_peer 1 "$t0") || return 1
  for i in $(seq 2 $NPEERS); do start_peer "$i" --bootstrap "$(head -1 "$net/p1.addr")"; done
  for i in $(seq 2 $NPEERS); do wait_peer "$i" > /dev/null || return 1; done
  printf '{"version":1,"peers":[%s]}\n' "$(for i in $(seq $NPEERS); do printf '"%s",' "$(head -1 "$net/p$i.addr")"; done | sed 's/,$//')" > "$net/network.json"
}

# fresh_wallet NAME: a new home holding the patient's identity (key import).
fresh_wallet() {
  "$mw" --home "$net/$1" key import "$net/alice.key" > /dev/null 2>&1
  cp "$net/network.json" "$net/$1/network.json" 2>/dev/null || true
}

tables=()
if [[ " $PARTS " == *" table "* ]]; then
  rows=()
  for n in $SIZES; do
    network "$n" 0
    echo "measuring at $n entries..." >&2
    export MEDWALLET_NETWORK="$net/network.json"
    if ! peers_up; then
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
  for p in $NETS; do
    # The patient's own story is 40 entries; the rest of the network is
    # p-1 more patients (6 entries each).
    network 40 $((p - 1))
    echo "measuring a network of $p patients..." >&2
    export MEDWALLET_NETWORK="$net/network.json"
    total=$(awk '{ print $1 }' "$net/gen.txt")
    if ! peers_up; then
      rows+=("| $(num "$p") | $(num "$total") | $start | | |")
      stop_all; continue
    fi
    fresh_wallet "new"
    measure "netsync-$p" "$mw" --verbose --home "$net/new" sync
    size="-"
    [ -f "$net/new/ledger.db" ] && size="$(du -k "$net/new/ledger.db" | awk '{ printf "%.1f MiB", $1/1024 }'), $("$mw" --home "$net/new" ledger export "$net/new.export" --json 2>/dev/null | sed -n 's/.*"entries": *\([0-9]*\).*/\1 entries/p')"
    rows+=("| $(num "$p") | $(num "$total") | $start | $(cell "netsync-$p" wall) | $size |")
    stop_all
    rm -rf "$net"
  done
  tables+=("$(printf '%s\n' "### One peer's start and one wallet's \`sync\` by network size" "" \
    "Every peer's data directory holds what the code keeps for the network: today, every entry of every author." "" \
    "| patients in the network | entries on each peer | peer start (CPU, RSS, wall) | \`sync\` into a new wallet, 6 peers | wallet ledger after \`sync\` |" \
    "| --- | --- | --- | --- | --- |" "${rows[@]}")")
fi

if [[ " $PARTS " == *" reach "* ]]; then
  echo "running the revocation reach benchmarks..." >&2
  rows=()
  while IFS='|' read -r name p50 p99 maxms; do
    rows+=("| $name | $p50 | $p99 | $maxms |")
  done < <(
    # Revocation benchmarks run their own trials (one iteration); gossip
    # reach is one message per iteration.
    { timeout -k 10 "$TIMEOUT" go test -run '^$' -bench 'RevocationReach' -benchtime 1x ./p2p/... 2>&1 || true
      timeout -k 10 "$TIMEOUT" go test -run '^$' -bench 'GossipReach' -benchtime 200x ./p2p/... 2>&1 || true; } | awk '
      /^Benchmark/ && /p99-ms/ {
        name=$1; sub(/-[0-9]+$/, "", name); p50="-"; p99="-"; mx="-"
        for (i=3; i<NF; i++) {
          if ($(i+1) == "p50-ms") p50=$i " ms"; if ($(i+1) == "p99-ms") p99=$i " ms"; if ($(i+1) == "max-ms") mx=$i " ms"
        }
        print name "|" p50 "|" p99 "|" mx
      }'
  ) || true
  [ ${#rows[@]} = 0 ] && rows=("| (no reach benchmark finished within ${TIMEOUT}s) | | | |")
  tables+=("$(printf '%s\n' "### Revocation reach (Go benchmarks, loopback peers in one process)" "" \
    "| benchmark | p50 | p99 | max |" "| --- | --- | --- | --- |" "${rows[@]}")")
fi

printf '\n%s\n' "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, ${BENCH_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}; CPU = user+system, RSS = peak; \`audit verify\`, \`log\` and \`grants\` read the local ledger (--offline)."
for t in "${tables[@]}"; do printf '\n%s\n' "$t"; done
