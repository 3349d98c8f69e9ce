#!/usr/bin/env bash
# Figures for issue 11: the patient's `record get` of a 1 MiB record and
# the reach of a `revoke` (until every peer denies the revoked grantee),
# p50/p99, without attack and with each attack of internal/attack running,
# and each peer's peak RSS under it; one table on stdout. Five separate
# peer processes on loopback per attack. Not part of CI (it takes about
# 15 minutes on 2 cores).
#   MEDWALLET_ATTACK_RUNS=N    runs per figure (default 5)
#   MEDWALLET_ATTACK_ONLY=STR  only the attacks whose name contains STR
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench '^BenchmarkAttacks$' -benchtime 1x -timeout 60m ./internal/attack "$@" |
  grep -v -e '^goos:' -e '^goarch:' -e '^pkg:' -e '^cpu:' -e '^Benchmark' -e '^PASS' -e '^ok '
