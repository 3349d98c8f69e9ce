package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
)

// TestDescribePeersDieMidAdd: the chain a peer dying during an add leaves
// (vault's wrapping around the client's stream reset) becomes one plain
// line and a hint; the raw chain goes to --verbose and to JSON's detail.
func TestDescribePeersDieMidAdd(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp4", Err: syscall.ECONNRESET}
	raw := fmt.Errorf("vault: storing share 1: %w", fmt.Errorf("stream reset: %w", fmt.Errorf("stream reset: connection closed: %w", reset)))
	err := &wallet.NetworkError{Op: wallet.OpStoreShares, Err: raw}

	msg, hint, detail := describe(err)
	if strings.Contains(msg, "stream reset") || strings.Contains(msg, "tcp4") || strings.Contains(msg, "vault:") {
		t.Errorf("raw detail in the message: %q", msg)
	}
	if !strings.Contains(msg, "the record was not added") {
		t.Errorf("message %q does not say what happened to the record", msg)
	}
	if !strings.Contains(hint, "'medwallet peers'") {
		t.Errorf("hint %q", hint)
	}
	if !strings.Contains(detail, "connection reset by peer") || !strings.Contains(detail, "storing share 1") {
		t.Errorf("detail %q lost the chain", detail)
	}

	for _, c := range []struct {
		verbose, json bool
	}{{false, false}, {true, false}, {false, true}} {
		var out, errb bytes.Buffer
		g := newGlobals(nil, &out, &errb)
		g.verbose, g.json = c.verbose, c.json
		if code := g.finish(err); code != exitError {
			t.Errorf("exit code %d", code)
		}
		switch {
		case c.json:
			var ej errorJSON
			if err := json.Unmarshal(out.Bytes(), &ej); err != nil {
				t.Fatal(err)
			}
			if ej.Error.Message != msg || ej.Error.Detail != detail || ej.Error.Hint != hint {
				t.Errorf("JSON error %+v", ej.Error)
			}
		case c.verbose:
			if !strings.Contains(errb.String(), "\nmedwallet: detail: "+detail+"\n") {
				t.Errorf("--verbose stderr:\n%s", errb.String())
			}
		default:
			if strings.Contains(errb.String(), "reset") || strings.Count(errb.String(), "\n") != 2 {
				t.Errorf("stderr:\n%s", errb.String())
			}
		}
	}
}

// TestDescribeKeepsContext: a reworded part keeps what callers said around it.
func TestDescribeKeepsContext(t *testing.T) {
	err := fmt.Errorf("record 0123 is stored on peers but not yet published: %w",
		&wallet.NetworkError{Op: wallet.OpPublish, Err: errors.New("stream reset")})
	msg, hint, detail := describe(err)
	if msg != "record 0123 is stored on peers but not yet published: no peer took the update to your ledger" {
		t.Errorf("message %q", msg)
	}
	if !strings.HasSuffix(hint, "retry with 'medwallet sync'") || !strings.Contains(detail, "stream reset") {
		t.Errorf("hint %q detail %q", hint, detail)
	}
}

// TestDescribeNoDetailForPlainErrors: an error already worded plainly has
// no detail.
func TestDescribeNoDetailForPlainErrors(t *testing.T) {
	msg, hint, detail := describe(&wallet.NotFoundError{Kind: wallet.KindRecord, Ref: "abcd"})
	if msg != `no record "abcd": not found` || hint != "list the records with 'medwallet record ls'" || detail != "" {
		t.Errorf("%q %q %q", msg, hint, detail)
	}
}

func TestQuoteArg(t *testing.T) {
	for in, want := range map[string]string{"Bob": "Bob", "Dr Bob": `"Dr Bob"`, `O'Neil "Jr"`: `"O'Neil \"Jr\""`} {
		if got := quoteArg(in); got != want {
			t.Errorf("quoteArg(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestDescribePeers: the peer counts read as words, with the hint that fits.
func TestDescribePeers(t *testing.T) {
	for _, c := range []struct {
		err       *wallet.PeersError
		msg, hint string
	}{
		{&wallet.PeersError{Answered: 0, Configured: 6, Needed: 4, K: 3},
			"none of the 6 peers in the network answered; storing this record needs at least 4, so that it can still be rebuilt after losing one",
			"check the peers with 'medwallet peers' and start the ones that are down, or lower --k"},
		{&wallet.PeersError{Answered: 2, Configured: 6, Needed: 4, K: 3},
			"only 2 of the 6 peers in the network answered; storing this record needs at least 4, so that it can still be rebuilt after losing one",
			"check the peers with 'medwallet peers' and start the ones that are down, or lower --k"},
		{&wallet.PeersError{Answered: 2, Configured: 2, Needed: 4, K: 3},
			"the network has only 2 peer(s), and all answered; storing this record needs at least 4, so that it can still be rebuilt after losing one",
			"add peers to the network file, or lower --k"},
		{&wallet.PeersError{Answered: 0, Configured: 1, Needed: 1},
			"the one peer in the network did not answer; at least 1 must",
			"are the peers running? check with 'medwallet peers'"},
	} {
		msg, hint, detail := describe(c.err)
		if msg != c.msg || hint != c.hint || detail != c.err.Error() {
			t.Errorf("%v:\n got %q %q %q\nwant %q %q", c.err, msg, hint, detail, c.msg, c.hint)
		}
	}
}

// TestDescribeStorageRefusals: when the peers refused a share, the line
// names each refusal and the hint the fix for the first.
func TestDescribeStorageRefusals(t *testing.T) {
	for _, tc := range []struct {
		errs       []error
		line, hint string
	}{
		{[]error{store.ErrQuota}, "your storage quota on a peer is used up", "'medwallet record rm ID'"},
		{[]error{store.ErrStorageFull}, "a peer's disk is nearly full", "free disk space"},
		{[]error{store.ErrPutRate}, "faster than a peer's put rate", "wait a minute"},
		{[]error{store.ErrNotAllowed, store.ErrQuota}, "allowlist; your storage quota", "'medwallet whoami'"},
	} {
		var wrapped []error
		for _, e := range tc.errs {
			wrapped = append(wrapped, fmt.Errorf("peer 12D3KooW: %w", e))
		}
		raw := fmt.Errorf("vault: storing share 2: no other peer to place the share on: %w", errors.Join(wrapped...))
		msg, hint, _ := describe(&wallet.NetworkError{Op: wallet.OpStoreShares, Err: raw})
		if !strings.Contains(msg, tc.line) || !strings.Contains(msg, "the record was not added") || strings.Contains(msg, "vault:") {
			t.Errorf("%v: message %q", tc.errs, msg)
		}
		if !strings.Contains(hint, tc.hint) {
			t.Errorf("%v: hint %q", tc.errs, hint)
		}
	}
}

// TestDescribeNotAuthorised: a peer's not-authorised refusal of a pull or
// a push is named as such, with a hint about who may read a ledger.
func TestDescribeNotAuthorised(t *testing.T) {
	refused := &ledgersync.RefusedError{Peer: "12D3KooWtest", Code: ledgersync.CodeNotAuthorised, Detail: "heads"}
	for _, c := range []struct {
		op, want string
	}{
		{wallet.OpPull, "no peer sent its copy of the ledger: they refused (not authorised)"},
		{wallet.OpPublish, "no peer took the update to your ledger: they refused it (not authorised)"},
	} {
		err := &wallet.NetworkError{Op: c.op, Err: fmt.Errorf("no peer took the entries: %w", errors.Join(refused))}
		msg, hint, _ := describe(err)
		if msg != c.want {
			t.Errorf("%s: message %q, want %q", c.op, msg, c.want)
		}
		if !strings.Contains(hint, "serve it") || !strings.Contains(hint, "'medwallet peers'") {
			t.Errorf("%s: hint %q", c.op, hint)
		}
	}
}

// TestDescribeRelayOnly: a share transfer that failed with a peer behind
// NAT reachable only through a relay (its budget ran out) gets the relay
// hint, in an import (the vault keeps each share's failure as text) and in
// an add.
func TestDescribeRelayOnly(t *testing.T) {
	relayed := &shares.RelayError{Peer: "12D3KooWtest", Err: errors.New("stream reset")}
	getErr := &wallet.RecordError{Record: "00112233445566778899aabbccddeeff", Err: &vault.NotEnoughSharesError{K: 3, N: 5,
		Shares: []vault.ShareHealth{{Index: 0, Status: vault.StatusMissing, Detail: relayed.Error()}}}}
	putErr := &wallet.NetworkError{Op: wallet.OpStoreShares, Err: fmt.Errorf("vault: storing share 1: %w", relayed)}
	for _, err := range []error{relayed, getErr, putErr} {
		if _, hint, _ := describe(err); !strings.Contains(hint, "--relay-budget-mib") || !strings.Contains(hint, "--announce") {
			t.Errorf("%v: hint %q", err, hint)
		}
	}
	if !errors.Is(relayed, shares.ErrRelayOnly) || !strings.Contains(relayed.Error(), "reachable only through a relay") {
		t.Fatalf("RelayError %q is not ErrRelayOnly", relayed)
	}
}
