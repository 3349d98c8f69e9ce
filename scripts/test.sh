#!/usr/bin/env bash
# Runs every test of medwallet: go test -race ./... (each package's tests get
# 30 minutes: the attack suite runs separate peer processes) inside a private D-Bus
# session with an unlocked gnome-keyring, so that the Secret Service keyring
# backend is exercised for real next to keyctl, pass and the file backend.
# Extra arguments go to go test (for example -run TestScripts).
#
# Where the time goes (2 cores): cmd/medwallet's testscripts, which run the
# race-built test binary as `medwallet` hundreds of times, and
# internal/attack, which runs peer processes under attack; both start first
# (go test starts packages in the order given), so that neither is left to
# run alone at the end. In the testscripts two things differ from a plain
# -race build (cmd/medwallet/main_test.go, peerbin_test.go):
#   - each command runs with GORACE=atexit_sleep_ms=0: a race-built process
#     no longer sleeps a second before it exits 0; the detector stays on;
#   - the long-running `medwallet peer` processes a script starts are built
#     without -race (every other command is the race-built binary). The
#     same peer code runs under -race in-process in p2p/peer and the other
#     p2p packages, wallet, wallet/demo (six peers in one process) and
#     cmd/medwallet's TestPeerMetricsFromConfig.
#     MEDWALLET_SCRIPT_PEER_RACE=1 builds the script peers with -race too.
set -euo pipefail
cd "$(dirname "$0")/.."

# The longest packages first; ./... adds the rest (each package runs once).
pkgs=(./cmd/medwallet ./internal/attack ./consent ./...)

if ! command -v dbus-run-session >/dev/null || ! command -v gnome-keyring-daemon >/dev/null; then
  echo "scripts/test.sh: no dbus-run-session/gnome-keyring here: the Secret Service test will be skipped (bash .ci/run installs them)" >&2
  exec go test -race -count=1 -timeout 30m "${pkgs[@]}" "$@"
fi

# On a machine set up by .ci/run every real backend must run, never skip.
export MEDWALLET_REQUIRE_BACKENDS="${MEDWALLET_REQUIRE_BACKENDS-secret-service,keyctl,pass,file}"
# gnome-keyring gets a fresh data directory each run, so its "login"
# collection is created (and unlocked) with our throw-away password rather
# than meeting one left on the machine with another.
keyrings=$(mktemp -d)
trap 'rm -rf "$keyrings"' EXIT
XDG_DATA_HOME="$keyrings" dbus-run-session -- bash -c '
  printf %s medwallet-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec go test -race -count=1 -timeout 30m "$@"
' bash "${pkgs[@]}" "$@" 2> >(grep -v "Failed to set fd limit" >&2)
