#!/usr/bin/env bash
# The figures of issue 15 (guardians): the time from the last guardian
# approval to a usable wallet, and a restored wallet's `sync`, for a
# patient with RECORDS records and at least ENTRIES ledger entries about
# it. Not part of the tests: figures depend on the machine and its load.
# Every figure is a real `medwallet` process; the peers are 3 separate
# `medwallet peer` processes on loopback. CPU is user+system time, RSS the
# peak resident set (/usr/bin/time -v).
#
#   scripts/guardian-bench.sh                   # 100 records, 1,000 entries
#   RECORDS=20 ENTRIES=200 scripts/guardian-bench.sh
#
# The ledger entries are the patient's own (identity, 100 anchors, a grant,
# the guardian set, the recovery) and the accesses the peers log in their
# sub-feeds about the patient: a clinician imports the granted records
# until the ledger holds ENTRIES entries.
#
# Needs /usr/bin/time (Debian package "time") and timeout (coreutils). It
# stops the peers it started (by PID) and removes its temporary directory
# on exit, also on failure and Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-100}
ENTRIES=${ENTRIES:-1000}
TIMEOUT=${TIMEOUT:-600}

out=$(mktemp -d "${TMPDIR:-/tmp}/guardian-bench.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
bounded() { timeout -s INT -k 10 "$TIMEOUT" "$@"; }

echo "building medwallet..." >&2
bounded go build -o "$out/medwallet" ./cmd/medwallet
mw=$out/medwallet
export MEDWALLET_KEYRING_BACKEND=file MEDWALLET_PASSPHRASE=bench MEDWALLET_EXPORT_PASSPHRASE=bench
unset MEDWALLET_HOME
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# measure NAME CMD...: runs CMD under /usr/bin/time; $out/NAME.{time,out,err}.
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$out/$name.time" timeout -s INT -k 10 "$TIMEOUT" "$@" > "$out/$name.out" 2> "$out/$name.err" ||
    { echo "$name fails: $(head -3 "$out/$name.err")" >&2; exit 1; }
}
cpu_of() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$out/$1.time"; }
rss_of() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2/1024 }' "$out/$1.time"; }
wall_of() { awk -F': ' '/Elapsed \(wall clock\)/ { n=split($2, a, ":"); s=0; for (i=1; i<=n; i++) s=s*60+a[i]; printf "%.1f", s }' "$out/$1.time"; }

echo "starting 3 peers..." >&2
"$mw" peer --data "$out/p1" --listen /ip4/127.0.0.1/tcp/0 --mdns=false --dht=false --addr-file "$out/p1.addr" > /dev/null 2> "$out/p1.log" &
pids+=($!)
for _ in $(seq 300); do [ -s "$out/p1.addr" ] && break; sleep 0.1; done
for i in 2 3; do
  "$mw" peer --data "$out/p$i" --listen /ip4/127.0.0.1/tcp/0 --mdns=false --dht=false --addr-file "$out/p$i.addr" \
    --bootstrap "$(head -1 "$out/p1.addr")" > /dev/null 2> "$out/p$i.log" &
  pids+=($!)
done
for i in 2 3; do for _ in $(seq 300); do [ -s "$out/p$i.addr" ] && break; sleep 0.1; done; done
{
  echo '{"version": 1, "peers": ['
  sed -n 1p "$out/p1.addr" | sed 's/.*/"&",/'
  sed -n 1p "$out/p2.addr" | sed 's/.*/"&",/'
  sed -n 1p "$out/p3.addr" | sed 's/.*/"&"/'
  echo ']}'
} > "$out/network.json"
export MEDWALLET_NETWORK=$out/network.json

a() { bounded "$mw" --home "$out/alice" "$@"; }
for who in bob carol; do bounded "$mw" --home "$out/$who" init --name "$who" > /dev/null 2>&1; done
a init --name Alice > /dev/null 2>&1
alice_id=$(a whoami --json | sed -n 's/.*"id": "\([^"]*\)".*/\1/p')
a contact add Bob "$(bounded "$mw" --home "$out/bob" whoami --card)" > /dev/null
a contact add Carol "$(bounded "$mw" --home "$out/carol" whoami --card)" > /dev/null
bounded "$mw" --home "$out/bob" contact add Alice "$(a whoami --card)" > /dev/null

echo "adding $RECORDS records..." >&2
for i in $(seq "$RECORDS"); do
  printf '{"resourceType":"Observation","id":"bench-%s","status":"final","code":{"text":"bench %s"},"valueString":"%s"}\n' \
    "$i" "$i" "$(head -c 3000 /dev/zero | tr '\0' x)" > "$out/r.json"
  a record add --k 2 --label "bench $i" "$out/r.json" >> "$out/records" 2> /dev/null
done
gid=$(a grant --to Bob --all --scope 'patient/*.rs' --purpose TREAT 2> /dev/null)
entries() { a ledger export "$out/l.export" --json 2> /dev/null | sed -n 's/.*"entries": *\([0-9]*\).*/\1/p'; rm -f "$out/l.export"; }
n=$(entries)
round=0
while [ "${n:-0}" -lt "$ENTRIES" ] && [ "$round" -lt 20 ]; do
  round=$((round + 1))
  echo "ledger: $n entries; the clinician imports (round $round)..." >&2
  bounded "$mw" --home "$out/bob" import "$gid" --out "$out/bob/imp$round" > /dev/null 2>&1 || true
  a sync > /dev/null 2>&1 || true
  n=$(entries)
done
a guardian setup --threshold 2 --guardians Bob Carol > /dev/null 2>&1
a sync > /dev/null 2>&1
n=$(entries)
echo "ledger: $n entries; the device is lost, recovery starts..." >&2
rm -rf "$out/alice"

code=$(bounded "$mw" --home "$out/new" recover --start "$alice_id" 2> /dev/null)
bounded "$mw" --home "$out/carol" guardian approve "$code" > /dev/null 2>&1
bounded "$mw" --home "$out/bob" guardian approve "$code" > /dev/null 2>&1   # the last approval
measure finish "$mw" --home "$out/new" recover --finish --json
restored=$(sed -n 's/.*"restored": *\([0-9]*\).*/\1/p' "$out/finish.out" | head -1)
# usable: a record opens
first=$(head -1 "$out/records")
measure get "$mw" --home "$out/new" record get "$first" --out "$out/back.json"

# a restored wallet's sync, alone: the identity into a fresh home, then sync
bounded "$mw" --home "$out/new" key export --out "$out/alice.key" > /dev/null 2>&1
bounded "$mw" --home "$out/fresh" key import "$out/alice.key" > /dev/null 2>&1
measure sync "$mw" --home "$out/fresh" sync --json
srestored=$(sed -n 's/.*"restored": *\([0-9]*\).*/\1/p' "$out/sync.out" | head -1)
sentries=$(sed -n 's/.*"entries": *\([0-9]*\).*/\1/p' "$out/sync.out" | head -1)

printf '\n| step (%s records, %s ledger entries) | wall | CPU | peak RSS |\n| --- | --- | --- | --- |\n' "$RECORDS" "$n"
printf '| `recover --finish` after the last approval (identity, then its sync: %s manifests restored) | %s s | %s s | %s MiB |\n' \
  "$restored" "$(wall_of finish)" "$(cpu_of finish)" "$(rss_of finish)"
printf '| then the first `record get` (usable) | %s s | %s s | %s MiB |\n' "$(wall_of get)" "$(cpu_of get)" "$(rss_of get)"
printf '| `sync` of the restored identity in a fresh home (%s entries pulled, %s manifests restored) | %s s | %s s | %s MiB |\n' \
  "$sentries" "$srestored" "$(wall_of sync)" "$(cpu_of sync)" "$(rss_of sync)"
printf '\nMeasured %s on %s cores, %s (load average %s at the start, %s at the end).\n' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)"
