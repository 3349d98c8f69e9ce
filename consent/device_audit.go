package consent

// The audit's view of devices (device.go). An access entry names the heads
// of the owner's device feeds its decider held (AccessBody.DeviceHeads);
// the audit re-decides on those prefixes: the device grants and
// revocations within them count with the owner's, and a device-revoke
// counts when it lies within the owner's prefix. A device entry itself
// holds at any prefix: it is the first entry of its feed, and its owner's
// signature does not depend on time, but the audit counts it only where
// the decider named the device's head, as for any other fact.

// deviceOwner holds when the prefixes hold the device's feed (its first
// entry is its device entry): a decider names the heads of the owner's
// devices it holds.
func (a *asOf) deviceOwner(device ID) (ID, bool) {
	if a.lim.of(device) == 0 {
		return "", false
	}
	return a.x.full.DeviceOwner(device)
}

func (a *asOf) deviceCut(device ID) (uint64, bool) {
	d, ok := a.x.full.devices[device]
	if !ok {
		return 0, false
	}
	return cutOf(a.x.full.deviceRevs[device], d.Owner, func(r deviceRevocation) bool {
		return a.lim.visible(authorSeq{r.author, r.seq})
	})
}

// withDevices is the grant index as of the prefixes: the owner's cursor
// when the prefixes hold none of the owner's device feeds; otherwise an
// index built afresh from the owner's and the devices' grants and
// revocations within their prefixes (a grant is live unless one of them
// revoked it, in whatever feed).
func (a *asOf) withDevices() *grantIndex {
	owner, full := a.gc.owner, a.x.full
	var feeds []authorSeq
	for _, l := range a.lim {
		if d, ok := full.devices[l.author]; ok && d.Owner == owner && l.seq > 0 {
			feeds = append(feeds, l)
		}
	}
	if len(feeds) == 0 {
		return a.gc.gx
	}
	feeds = append(feeds, authorSeq{owner, a.lim.of(owner)})
	revoked := make(map[Hash]bool)
	var grants []*GrantInfo
	for _, f := range feeds {
		for _, ev := range a.x.events[f.author] {
			if ev.seq > f.seq {
				break
			}
			g := a.x.grantOf(ev)
			switch {
			case g == nil:
			case ev.revoke:
				revoked[g.ID] = true
			default:
				grants = append(grants, g)
			}
		}
	}
	gx := newGrantIndex()
	for _, g := range grants {
		gx.add(g, !revoked[g.ID])
	}
	return gx
}
