package shares

import (
	"time"

	"github.com/medwallet/medwallet/consent"
)

// maxSubFeeds bounds the sub-feed signers kept in memory; beyond it the
// cache starts again (deriving one costs two signatures).
const maxSubFeeds = 4096

// subFeeds caches this peer's sub-feeds, one per owner: the peer logs
// its decisions about an owner's records in its sub-feed about that owner
// (consent.SubFeed), so that the owner's serving peers replicate the
// accesses to that owner's records and nothing else.
type subFeeds map[consent.ID]*consent.SubFeed

// subFeed returns this peer's sub-feed about owner, and the link entry it
// appended (dated now) if the ledger did not hold the sub-feed yet.
// decideMu must be held.
func (s *Service) subFeed(owner consent.ID, now time.Time) (*consent.SubFeed, *consent.Entry, error) {
	f, ok := s.feeds[owner]
	if !ok {
		var err error
		if f, err = consent.NewSubFeed(s.signer, owner); err != nil {
			return nil, nil, err
		}
		if s.feeds == nil || len(s.feeds) >= maxSubFeeds {
			s.feeds = make(subFeeds)
		}
		s.feeds[owner] = f
	}
	link, err := f.EnsureLinked(s.ledger, now)
	if err != nil {
		return nil, nil, err
	}
	return f, link, nil
}
