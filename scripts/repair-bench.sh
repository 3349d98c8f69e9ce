#!/usr/bin/env bash
# Repair throughput of one record against `record add` of the same record,
# in the same run (docs/bench.md, "Repair without the key"). Real binaries:
# seven `medwallet peer` processes on loopback, a patient and a repairer
# wallet. The patient adds the record (k=3, n=5), grants the repairer, two
# holders of the record (n-k) are killed, and the repairer runs one repair
# cycle; the record is then read back and compared. Not part of the tests.
#
#   scripts/repair-bench.sh              # a 256 MiB record
#   SIZE_MIB=64 scripts/repair-bench.sh
#
# Needs /usr/bin/time (Debian package "time") for CPU and RSS. It stops
# the processes it started (by PID) and removes its directory on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}
PEERS=7
out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT

go build -o "$out/medwallet" ./cmd/medwallet
mw="$out/medwallet"
export MEDWALLET_KEYRING_BACKEND=file MEDWALLET_PASSPHRASE=bench HOME="$out"

start_peer() { # NAME [BOOTSTRAP]
  local boot=()
  [ -n "${2:-}" ] && boot=(--bootstrap "$2")
  "$mw" peer --data "$out/$1" --listen /ip4/127.0.0.1/tcp/0 --mdns=false --dht=false \
    --addr-file "$out/$1.addr" "${boot[@]}" >/dev/null 2>"$out/$1.log" &
  pids+=($!)
  echo $! >"$out/$1.pid"
  for _ in $(seq 300); do [ -s "$out/$1.addr" ] && return; sleep 0.1; done
  echo "peer $1 did not start" >&2
  exit 1
}
start_peer p1
for i in $(seq 2 $PEERS); do start_peer "p$i" "$(head -1 "$out/p1.addr")"; done
{
  echo '{"version": 1, "peers": ['
  for i in $(seq 1 $PEERS); do
    sep=,; [ "$i" = $PEERS ] && sep=
    echo "  \"$(grep /tcp/ "$out/p$i.addr" | head -1)\"$sep"
  done
  echo ']}'
} >"$out/network.json"
export MEDWALLET_NETWORK="$out/network.json"

alice=(--home "$out/alice")
rep=(--home "$out/rep")
"$mw" "${alice[@]}" init --name Alice >/dev/null 2>&1
"$mw" "${rep[@]}" init --name Repairer >/dev/null 2>&1
"$mw" "${rep[@]}" whoami --card | "$mw" "${alice[@]}" contact add RepairBox - >/dev/null
head -c $((SIZE_MIB << 20)) /dev/urandom >"$out/record.bin"

# measure LABEL CMD...: wall, CPU (user+sys) and peak RSS of one command.
declare -A wall cpu rss
measure() {
  local label=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$out/time" "$@"
  read -r w u s m <"$out/time"
  wall[$label]=$w
  cpu[$label]=$(echo "$u + $s" | bc)
  rss[$label]=$((m / 1024))
}

measure add "$mw" "${alice[@]}" record add --k 3 --n 5 "$out/record.bin" >"$out/id" 2>/dev/null
id=$(cat "$out/id")
"$mw" "${alice[@]}" repair grant RepairBox >/dev/null

# n-k holders of the record killed outright
killed=0
for pid in $("$mw" "${alice[@]}" repair audit "$id" --json | grep -o '12D3KooW[A-Za-z0-9]*' | sort -u); do
  [ $killed -lt 2 ] || break
  for i in $(seq 1 $PEERS); do
    if grep -q "$pid" "$out/p$i.addr"; then
      kill -KILL "$(cat "$out/p$i.pid")"
      killed=$((killed + 1))
    fi
  done
done

measure repair "$mw" "${rep[@]}" repair run --json >"$out/repair.json"
fetched=$(grep -o '"bytes_fetched": [0-9]*' "$out/repair.json" | grep -o '[0-9]*$')
written=$(grep -o '"bytes_written": [0-9]*' "$out/repair.json" | grep -o '[0-9]*$')
rebuilt=$(grep -o '"rebuilt": [0-9]*' "$out/repair.json" | grep -o '[0-9]*$')
measure get "$mw" "${alice[@]}" record get "$id" --out "$out/back.bin" 2>/dev/null
cmp -s "$out/record.bin" "$out/back.bin" && same=yes || same=NO

mbs() { echo "scale=1; $SIZE_MIB / $1" | bc; }
printf '%s MiB record, k=3 n=5, %d peer processes on loopback; %d holders killed; load %s\n' \
  "$SIZE_MIB" $PEERS $killed "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| step | wall s | record MiB/s | CPU s | peak RSS MiB | notes |\n| --- | ---: | ---: | ---: | ---: | --- |\n'
printf '| `record add` | %s | %s | %s | %s | seal and place 5 shares |\n' "${wall[add]}" "$(mbs "${wall[add]}")" "${cpu[add]}" "${rss[add]}"
printf '| `repair run` | %s | %s | %s | %s | audit, %s shares rebuilt: %s MiB fetched, %s MiB written |\n' \
  "${wall[repair]}" "$(mbs "${wall[repair]}")" "${cpu[repair]}" "${rss[repair]}" "$rebuilt" \
  "$((fetched >> 20))" "$((written >> 20))"
printf '| `record get` after | %s | %s | %s | %s | byte-identical: %s |\n' "${wall[get]}" "$(mbs "${wall[get]}")" "${cpu[get]}" "${rss[get]}" "$same"
