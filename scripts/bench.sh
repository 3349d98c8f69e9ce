#!/usr/bin/env bash
# Benchmarks of medwallet, printed as one table. Not part of the tests:
# figures depend on the machine (2 cores here). Usage:
#   scripts/bench.sh            # everything (about 6 minutes)
#   scripts/bench.sh quick      # Go benchmarks only
#   scripts/bench.sh cli        # the CLI and peer processes only
# Needs /usr/bin/time (Debian package "time") for the RSS figures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
stop_peers() { pkill -INT -f "$out/medwallet peer" 2>/dev/null || true; }
trap 'stop_peers; sleep 1; pkill -KILL -f "$out/medwallet" 2>/dev/null || true; rm -rf "$out"' EXIT

rows=()
row() { rows+=("$(printf '%-44s %14s %12s %30s  %s' "$1" "$2" "$3" "${5:-}" "$4")"); }

# Ratios are printed only between a benchmark and the yardstick written for
# it in the same function, on the same terms (input, buffer strategy, output
# sink, warm-up; see the comments in vault/bench_test.go and
# consent/bench_test.go): wall time of the row over wall time of the
# yardstick, then CPU time over CPU time where both report cpu-ms (on a
# shared machine the wall times move with the other jobs; CPU time moves
# less, but counts the vault's parallel work on every core).
yardstick() {
  case $1 in
    BenchmarkSeal/age-plain | BenchmarkOpen/age-plain | BenchmarkFeedVerify/*/raw-ed25519) ;;
    BenchmarkSeal/* | BenchmarkOpen/*) echo "${1%%/*}/age-plain" ;;
    BenchmarkFeedVerify/*) echo "${1%/*}/raw-ed25519" ;;
  esac
}
declare -A nsop cpu

# Go benchmarks: name, ns/op or MB/s, and reported metrics. With a count
# above 1 (the 256 MiB vault runs: single runs on 2 shared cores vary by
# 2x or more), each benchmark's run with the median ns/op is printed.
gobench() {
  local pkg=$1 re=$2 n=${3:-1x} count=${4:-1}
  go test -run '^$' -bench "$re" -benchtime="$n" -count="$count" "$pkg" 2>&1 | tee -a "$out/go.txt" |
    awk '/^Benchmark/ {
      name=$1; sub(/-[0-9]+$/, "", name); mbs=""; extra=""; nsop="";
      for (i=3; i<=NF; i++) {
        if ($(i+1) == "MB/s") mbs=$i" MB/s";
        else if ($(i+1) == "ns/op") nsop=$i;
        else if ($(i+1) ~ /-ms$|entries\/s|us\/op|x$/) extra=extra" "$i" "$(i+1);
      }
      if (mbs == "" && extra == "") extra=sprintf(" %.2f us/op", nsop/1000);
      if (mbs == "") { mbs=extra; extra="" }
      if (!(name in runs)) order[++names]=name
      r=++runs[name]; line[name, r]=name "|" mbs "|" extra "|" nsop; ns[name, r]=nsop+0 }
    END {
      for (i=1; i<=names; i++) {
        name=order[i]; m=runs[name]
        for (a=1; a<=m; a++) idx[a]=a
        for (a=2; a<=m; a++) for (c=a; c>1 && ns[name, idx[c-1]] > ns[name, idx[c]]; c--) { t=idx[c]; idx[c]=idx[c-1]; idx[c-1]=t }
        print line[name, idx[int((m+1)/2)]]
      }
    }'
}

if [ "${1:-}" != cli ]; then
echo "running Go benchmarks..." >&2
while IFS='|' read -r name mbs extra ns; do
  nsop[$name]=$ns
  cpu[$name]=$(awk '{ for (i=1; i<NF; i++) if ($(i+1) == "cpu-ms") print $i }' <<<"$extra")
  y=$(yardstick "$name") ratio=""
  if [ -n "$y" ] && [ -n "${nsop[$y]:-}" ]; then
    ratio=$(awk -v a="$ns" -v b="${nsop[$y]}" -v y="${y##*/}" 'BEGIN { printf "%.2fx %s", a/b, y }')
    if [ -n "${cpu[$name]}" ] && [ -n "${cpu[$y]:-}" ]; then
      ratio="$ratio, cpu $(awk -v a="${cpu[$name]}" -v b="${cpu[$y]}" 'BEGIN { printf "%.2fx", a/b }')"
    fi
  fi
  case $name in
    # age to io.Discard from the same generator as the network rows, which
    # add the network and the peers' stores: no like-for-like ratio there.
    BenchmarkPlainAge) extra="$extra (age alone; no network)" ;;
  esac
  row "$name" "$mbs" "" "$extra" "$ratio"
done < <(
  gobench ./vault 'Seal|Open' 1x 3
  gobench ./consent 'FeedVerify'
  gobench ./consent 'Decide' 20000x
  gobench ./p2p/ledgersync 'GossipReach20' 200x
  gobench ./p2p/client 'PlainAge|NetworkAddImport|RevocationReach'
)
fi

if [ "${1:-}" != quick ]; then
  echo "running the CLI against 6 separate peer processes (256 MiB, k=4 n=6)..." >&2
  go build -o "$out/medwallet" ./cmd/medwallet
  mw="$out/medwallet"
  export MEDWALLET_HOME="$out/home" MEDWALLET_KEYRING_BACKEND=file MEDWALLET_PASSPHRASE=bench
  peer() { "$mw" peer --data "$out/p$1" --listen /ip4/127.0.0.1/tcp/0 --mdns=false --dht=false --log-level error --addr-file "$out/p$1.addr" "${@:2}"; }
  waitaddr() { for _ in $(seq 200); do [ -s "$out/p$1.addr" ] && return 0; sleep 0.05; done; echo "peer $1 did not start" >&2; exit 1; }
  /usr/bin/time -v -o "$out/peer1.time" "$mw" peer --data "$out/p1" --listen /ip4/127.0.0.1/tcp/0 --mdns=false --dht=false \
    --log-level error --addr-file "$out/p1.addr" > /dev/null 2>"$out/p1.log" &
  waitaddr 1
  for i in 2 3 4 5 6; do peer "$i" --bootstrap "$(head -1 "$out/p1.addr")" > /dev/null 2>"$out/p$i.log" & done
  for i in 2 3 4 5 6; do waitaddr "$i"; done
  printf '{"version":1,"peers":[%s]}\n' "$(for i in 1 2 3 4 5 6; do printf '"%s",' "$(head -1 "$out/p$i.addr")"; done | sed 's/,$//')" > "$out/network.json"
  export MEDWALLET_NETWORK="$out/network.json"
  "$mw" init --name Bench >/dev/null 2>&1
  "$mw" --home "$out/clin" init --name Clin --role clinician >/dev/null 2>&1
  "$mw" contact add Clin "$("$mw" --home "$out/clin" whoami --card)" >/dev/null
  "$mw" --home "$out/clin" contact add Bench "$("$mw" whoami --card)" >/dev/null
  head -c $((256 << 20)) /dev/urandom > "$out/big.bin"
  /usr/bin/time -v -o "$out/add.time" "$mw" record add --k 4 --n 6 "$out/big.bin" > "$out/id" 2>/dev/null
  gid=$("$mw" grant --to Clin --record "$(cat "$out/id")" --scope 'patient/*.rs' --purpose TREAT 2>/dev/null)
  /usr/bin/time -v -o "$out/import.time" "$mw" --home "$out/clin" import "$gid" --out "$out/imported" >/dev/null 2>"$out/import.err" || { cat "$out/import.err" "$out/import.time" >&2; exit 1; }
  cmp "$out/big.bin" "$out/imported/$(cat "$out/id").bin"
  stop_peers
  wait 2>/dev/null || true
  secs() { awk -F': ' '/Elapsed \(wall clock\)/ { n=split($2, a, ":"); s=0; for (i=1; i<=n; i++) s=s*60+a[i]; print s }' "$1"; }
  rss() { awk -F': ' '/Maximum resident set size/ { printf "%.0f MiB", $2/1024 }' "$1"; }
  add_s=$(secs "$out/add.time"); imp_s=$(secs "$out/import.time")
  row "CLI record add 256 MiB (6 peer processes)" "$(awk -v s="$add_s" 'BEGIN{printf "%.0f MB/s", 268.435456/s}')" "$(rss "$out/add.time")" "peak RSS of the CLI"
  row "CLI import 256 MiB (clinician)" "$(awk -v s="$imp_s" 'BEGIN{printf "%.0f MB/s", 268.435456/s}')" "$(rss "$out/import.time")" "peak RSS of the CLI"
  row "one peer during add + import" "" "$(rss "$out/peer1.time")" "peak RSS of a peer process"
fi

printf '\n%-44s %14s %12s %30s  %s\n' BENCHMARK THROUGHPUT RSS "TIME VS YARDSTICK" NOTES
printf '%s\n' "${rows[@]}"
