// Package netbed builds a small internet out of Linux network namespaces,
// so that tests can run medwallet peers on separate hosts behind real NATs.
//
// A Bed has one "internet" namespace holding a bridge. Public hosts are
// namespaces with one veth on that bridge and a public address. A NAT is a
// namespace with a WAN veth on the bridge and a LAN bridge of its own; it
// forwards and masquerades with nftables, and drops unsolicited packets
// on its WAN side as a home router does. Hosts behind a NAT are namespaces
// on its LAN with a default route through it. Nothing links a bed to the
// machine's own network: a packet sent in it can only reach the bed's
// namespaces.
//
// The internet uses 11.99.0.0/16, a range go-multiaddr counts as public.
// libp2p keeps only public addresses for the things a bed is there to
// test (AutoRelay's relay addresses, DCUtR's hole-punch addresses,
// AutoNAT's dial-backs), and every range reserved for documentation or
// benchmarking (192.0.2.0/24, 198.18.0.0/15, ...) is one it counts as
// unroutable, so the bed's internet cannot use them. The addresses exist
// only inside the bed's namespaces. LANs use 10.13.N.0/24.
//
// Building a bed needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), the ip
// command (iproute2) and nft (nftables). Without them Need skips the test,
// or fails it when $MEDWALLET_REQUIRE_NETNS is 1 (CI sets it, so a CI
// machine that cannot build a bed fails instead of passing untested).
//
// Every namespace a bed creates is named "mwnb<pid>-<n>-<name>", pid being
// the test process. New first deletes the namespaces of processes that are
// gone (a run killed by Ctrl-C or a test timeout leaves its namespaces
// behind), and a bed deletes its own in t.Cleanup. Veths, bridges and nft
// tables live inside the namespaces and go with them.
package netbed
