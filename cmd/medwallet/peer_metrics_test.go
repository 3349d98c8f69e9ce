package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
)

// lockedBuffer is a bytes.Buffer safe for a peer's logger and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `medwallet peer --config FILE` with `metrics = "127.0.0.1:0"` in the
// file serves Prometheus metrics at the URL it logs, with the peer's own
// figures, until it stops.
func TestPeerMetricsFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "peer.toml")
	if err := os.WriteFile(cfg, []byte(`data = "`+filepath.Join(dir, "p")+`"
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
dht = false
metrics = "127.0.0.1:0"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	g := newGlobals(strings.NewReader(""), io.Discard, &stderr)
	g.home = filepath.Join(dir, "home")
	root := newRootCommand(g)
	root.SetArgs([]string{"peer", "--config", cfg})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("peer: %v", err)
		}
	}()

	urlRE := regexp.MustCompile(`msg="serving metrics" url=(http://127\.0\.0\.1:[0-9]+/metrics)`)
	var url string
	testutil.Eventually(t, 10*time.Second, "the peer logs its metrics URL", func() bool {
		m := urlRE.FindStringSubmatch(stderr.String())
		if m != nil {
			url = m[1]
		}
		return m != nil && strings.Contains(stderr.String(), "peer started")
	})
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"medwallet_peer_ready 1", "medwallet_store_shares 0", `medwallet_connections{direction="inbound",path="direct"} 0`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the metrics lack %q", want)
		}
	}
}
