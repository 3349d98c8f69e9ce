package ledgersync

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// meshTracer watches the topic's mesh. A message forwarded just before a
// peer joined our mesh never reaches that peer by gossip (IHAVE goes only
// to peers outside the mesh), so each new mesh link starts a pull sync:
// together with the on-connect sync, no entry is left waiting for the
// periodic sync. Its methods run on gossipsub's event loop and must not
// block.
type meshTracer struct{ s *GossipService }

var _ pubsub.RawTracer = meshTracer{}

func (t meshTracer) Graft(p peer.ID, topic string) {
	if !t.s.ours(topic) {
		return
	}
	t.s.meshGraft(p, topic)
	t.s.askSync(p)
}

func (t meshTracer) Prune(p peer.ID, topic string) {
	if !t.s.ours(topic) {
		return
	}
	t.s.meshPrune(p, topic)
}

func (meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (meshTracer) OnClosedOutboundStream(peer.ID)                       {}
func (meshTracer) Join(string)                                          {}
func (meshTracer) Leave(string)                                         {}
func (meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (meshTracer) RejectMessage(*pubsub.Message, string)                {}
func (meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (meshTracer) ThrottlePeer(peer.ID)                                 {}
func (meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (meshTracer) UndeliverableMessage(*pubsub.Message)                 {}
