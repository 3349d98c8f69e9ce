#!/usr/bin/env bash
# The churn figure of issue 14 (docs/bench.md, "Churn simulation"): 1,000
# records (k=3 of n=5, real Reed-Solomon on 1 KiB shares), 20 peers that
# leave for good and are replaced a day later, a simulated year in steps
# of an hour, for three mean peer lifetimes, without repair and with a
# daily repairer at two thresholds. In-process (internal/churnsim): no
# network, no peer processes. One markdown table on stdout, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -run '^TestChurnTable$' -v ./internal/churnsim -args -table |
  sed -n 's/^ *\(|.*|\)$/\1/p'
