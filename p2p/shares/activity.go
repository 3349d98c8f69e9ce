package shares

import (
	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
)

// WithOwnerActivity is called when a share's owner asks whether the peer
// holds it (has) or reads it (a get allowed as the owner's): the peer
// renews the lease of the share's record (p2p/peer, gc.go).
func WithOwnerActivity(f func(owner consent.ID, record string)) Option {
	return func(s *Service) { s.onOwner = f }
}

// ownerActivity calls the hook when remote owns share id.
func (s *Service) ownerActivity(remote consent.ID, id vault.ShareID) {
	if s.onOwner == nil {
		return
	}
	if m, err := s.st.Meta(id); err == nil && m.Owner == remote {
		s.onOwner(m.Owner, m.Record)
	}
}
