package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/shlserve"
)

// peerSHLOptions are the flags of medwallet peer that serve SMART Health
// Links over HTTPS (p2p/shlserve; docs/network.md, "Sharing as a SMART
// Health Link").
type peerSHLOptions struct {
	listen, cert, key, publicURL, acme string
}

func addPeerSHLFlags(cmd *cobra.Command, o *peerSHLOptions) {
	f := cmd.Flags()
	f.StringVar(&o.listen, "shl-listen", "", "serve SMART Health Links over HTTPS on this TCP address (host:port); off when empty")
	f.StringVar(&o.cert, "shl-cert", "", "with --shl-listen: PEM certificate chain for HTTPS")
	f.StringVar(&o.key, "shl-key", "", "with --shl-listen: PEM private key of --shl-cert")
	f.StringVar(&o.publicURL, "shl-url", "", "with --shl-listen: the public base URL links name (https://host[:port]); default https:// and the listen address")
	f.StringVar(&o.acme, "shl-acme", "", "not built: certificates from ACME (use --shl-cert and --shl-key from your ACME client)")
}

// config checks the flags and returns the service's configuration, or nil
// when links are not served.
func (o peerSHLOptions) config() (*shlserve.Config, error) {
	if o.acme != "" {
		return nil, usageError{fmt.Errorf("--shl-acme is not built into this medwallet: get the certificate with an ACME client (certbot, lego) and pass --shl-cert and --shl-key")}
	}
	if o.listen == "" {
		if o.cert != "" || o.key != "" || o.publicURL != "" {
			return nil, usageError{fmt.Errorf("--shl-cert, --shl-key and --shl-url need --shl-listen")}
		}
		return nil, nil
	}
	if o.cert == "" || o.key == "" {
		return nil, usageError{fmt.Errorf("--shl-listen needs --shl-cert and --shl-key")}
	}
	if o.publicURL != "" {
		u, err := url.Parse(o.publicURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, usageError{fmt.Errorf("bad --shl-url %q: want https://host[:port]", o.publicURL)}
		}
	}
	return &shlserve.Config{Listen: o.listen, CertFile: o.cert, KeyFile: o.key, PublicURL: o.publicURL}, nil
}
