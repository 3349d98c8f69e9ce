#!/usr/bin/env bash
# End-to-end test of 'medwallet tui': a devnet of 4 peers, a patient and a
# clinician who exchanged cards, one record; then the TUI runs in tmux, a
# grant is made by keystrokes (tmux send-keys), the screen is read with
# tmux capture-pane, and the CLI checks that the grant exists, on the
# patient's side (medwallet grants --json) and in the clinician's inbox;
# then the clinician's TUI imports the record from its inbox.
# Needs tmux. Everything lives in a temporary directory and a private tmux
# server, both removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null || { echo "tui-e2e: tmux is needed (bash .ci/run installs it)" >&2; exit 1; }

tmp=$(mktemp -d)
sock="medwallet-tui-e2e-$$"
devnet_pid=""
tm() { tmux -L "$sock" "$@"; }
cleanup() {
  tm kill-server 2>/dev/null || true
  if [ -n "$devnet_pid" ]; then
    kill "$devnet_pid" 2>/dev/null || true
    wait "$devnet_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf 'tui-e2e: %s\n' "$*" >&2; }
fail() {
  echo "tui-e2e: FAIL: $*" >&2
  for s in tui patient; do
    if tm has-session -t "$s" 2>/dev/null; then
      echo "--- screen of $s ---" >&2
      tm capture-pane -p -t "$s" >&2 || true
    fi
  done
  echo "--- devnet stderr ---" >&2
  tail -20 "$tmp/devnet.err" >&2 || true
  exit 1
}
# until_ok SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds.
until_ok() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.1
  done
}
target=tui # the tmux session screen and on_screen read
screen() { tm capture-pane -p -t "$target"; }
on_screen() { screen | grep -qF -- "$1"; }

step "build"
go build -o "$tmp/medwallet" ./cmd/medwallet
mw="$tmp/medwallet"

export DBUS_SESSION_BUS_ADDRESS=disabled: NO_COLOR=1
export MEDWALLET_KEYRING_BACKEND=file MEDWALLET_PASSPHRASE=tui-e2e-passphrase
export MEDWALLET_NETWORK="$tmp/net/network.json"
alice() { MEDWALLET_HOME="$tmp/alice" "$mw" "$@"; }
bob() { MEDWALLET_HOME="$tmp/bob" "$mw" "$@"; }

step "devnet of 4 peers"
"$mw" devnet --peers 4 --dir "$tmp/net" >"$tmp/devnet.out" 2>"$tmp/devnet.err" &
devnet_pid=$!
devnet_up() { kill -0 "$devnet_pid" 2>/dev/null || fail "devnet exited"; [ "$(wc -l <"$tmp/devnet.out")" -ge 4 ]; }
until_ok 60 "the devnet" devnet_up

step "a patient and a clinician exchange cards; the patient adds a record"
alice init --name Alice >/dev/null 2>&1
bob init --name "Dr Bob" --role clinician >/dev/null 2>&1
alice contact add Bob "$(bob whoami --card)" >/dev/null
bob contact add Alice "$(alice whoami --card)" >/dev/null
printf '%s\n' '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"HbA1c"}}' >"$tmp/labs.json"
record=$(alice record add "$tmp/labs.json" --label "e2e labs" 2>/dev/null)
[ -n "$record" ] || fail "record add printed no ID"

step "medwallet tui in tmux (100x30)"
tm new-session -d -s tui -x 100 -y 30 \
  "env MEDWALLET_HOME='$tmp/alice' '$mw' tui --idle 10m --import-dir '$tmp'; echo \"tui exited: \$?\"; sleep 60"
until_ok 30 "the records screen" on_screen "e2e labs"

step "create a grant by keystrokes"
tm send-keys -t tui 3
until_ok 10 "the grants screen" on_screen "No grants yet"
tm send-keys -t tui n
until_ok 10 "the grant form" on_screen "New grant"
# To: Bob (the only contact). Records: down past "all records", toggle the
# record. Scopes: toggle patient/*.rs. Purpose TREAT and expiry 30d are the
# defaults. Enter grants.
tm send-keys -t tui Tab Down Space Tab Space
until_ok 10 "the scope to be chosen" on_screen "[x] patient/*.rs"
tm send-keys -t tui Enter
until_ok 60 "the grant to be made" on_screen "granted "
grant=$(screen | sed -n 's/.*granted \([0-9a-f]\{12\}\) to Bob.*/\1/p' | head -1)
[ -n "$grant" ] || fail "no grant ID on the screen"
until_ok 10 "the grant in the list" on_screen "active"
step "the screen shows grant $grant"
tm send-keys -t tui q
gone() { screen | grep -qF "tui exited: 0"; }
until_ok 10 "the TUI to quit" gone

step "the CLI sees the grant"
alice grants --json >"$tmp/grants.json"
grep -q "\"id\": *\"$grant" "$tmp/grants.json" || { cat "$tmp/grants.json" >&2; fail "grant $grant not in 'medwallet grants --json'"; }
alice grant show "$grant" --json >"$tmp/grant.json"
for want in '"status": *"active"' '"grantee_name": *"Bob"' "\"records\": *\\[ *\"$record\"" '"purpose": *"TREAT"' '"patient/\*\.rs"'; do
  tr -d '\n' <"$tmp/grant.json" | grep -q "$want" || { cat "$tmp/grant.json" >&2; fail "grant show lacks $want"; }
done
bob inbox --json >"$tmp/inbox.json"
grep -q "\"id\": *\"$grant" "$tmp/inbox.json" || { cat "$tmp/inbox.json" >&2; fail "grant $grant not in the clinician's inbox"; }

step "the patient watches the access log while the clinician imports from the TUI's inbox"
tm kill-session -t tui
tm new-session -d -s patient -x 100 -y 30 \
  "env MEDWALLET_HOME='$tmp/alice' '$mw' tui --idle 10m --poll 200ms; echo \"tui exited: \$?\"; sleep 60"
target=patient
until_ok 30 "the patient's TUI" on_screen "e2e labs"
tm send-keys -t patient 4
# The log may already hold the patient's own reads (granting reads the record
# to check what the scopes allow: minimum necessary), but nothing of Bob's.
log_open() { screen | grep -qE 'No access to your records yet|DECISION'; }
until_ok 30 "the access log" log_open
if screen | grep -q 'Bob'; then fail "the access log shows Bob before he imported"; fi
target=tui
mkdir "$tmp/bob-in"
tm new-session -d -s tui -x 100 -y 30 \
  "env MEDWALLET_HOME='$tmp/bob' '$mw' tui --idle 10m --import-dir '$tmp/bob-in'; echo \"tui exited: \$?\"; sleep 60"
until_ok 30 "the clinician's records screen" on_screen "No records yet"
tm send-keys -t tui 5
until_ok 30 "the grant in the inbox" on_screen "${grant:0:10}"
tm send-keys -t tui i
until_ok 60 "the import" on_screen "imported 1 record(s)"
tm send-keys -t tui q
until_ok 10 "the TUI to quit" gone
# Imports are named LABEL-ID.ext: the label "e2e labs" shows, then the ID.
cmp "$tmp/labs.json" "$tmp/bob-in/e2e-labs-$record".* || fail "the imported record differs from the original"
target=patient
live() { screen | grep -E '^\* .*allowed +Bob +TREAT' >/dev/null; }
until_ok 30 "the clinician's accesses in the patient's live log" live
[ -z "${TUI_E2E_SHOW:-}" ] || screen >&2 # TUI_E2E_SHOW=1 prints the patient's last screen
echo "tui-e2e: ok: grant $grant made in the TUI is listed by 'medwallet grants --json'; the clinician imported its record from the TUI's inbox; the patient's TUI showed the accesses live"
