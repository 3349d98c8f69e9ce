package netfile

import (
	"fmt"
	"strings"
)

// A peer announces its own failure domain in its libp2p identify agent
// version, after the software's name: "medwallet-peer site=clinic-a
// operator=acme" (`medwallet peer --site --operator`). Names are 1 to
// MaxDomainName characters of [A-Za-z0-9._-]. An announcement is the
// peer's own claim: a network file's domains, which the network's
// operators hand out, take precedence.

// ValidDomainName checks a site or operator name a peer announces.
func ValidDomainName(s string) error {
	if s == "" || len(s) > MaxDomainName {
		return fmt.Errorf("want 1 to %d characters", MaxDomainName)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q: only letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}

// AgentWithDomain appends d's announcement to agent.
func AgentWithDomain(agent string, d Domain) string {
	if d.Site != "" {
		agent += " site=" + d.Site
	}
	if d.Operator != "" {
		agent += " operator=" + d.Operator
	}
	return agent
}

// AgentDomain reads the domain a peer's agent version announces; names
// that are not valid are ignored.
func AgentDomain(agent string) Domain {
	var d Domain
	for _, f := range strings.Fields(agent) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || ValidDomainName(v) != nil {
			continue
		}
		switch k {
		case "site":
			d.Site = v
		case "operator":
			d.Operator = v
		}
	}
	return d
}
