package consent

import (
	"container/list"
	"sync"
)

// EntryCacheSize bounds the decoded entries a View keeps to answer EntryAt
// and Entry without reading its store: a few thousand entries, a few MiB.
// FeedFrom streams past the cache, so reading a long feed does not evict
// what Decide and the audit look up again and again.
const EntryCacheSize = 4096

// entryCache is a least-recently-used cache of decoded accepted entries,
// by slot. It has its own lock, so that a view's readers may share it.
type entryCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *cached, most recent first
	m   map[authorSeq]*list.Element
}

type cached struct {
	k authorSeq
	e *Entry
}

func newEntryCache(max int) *entryCache {
	return &entryCache{max: max, ll: list.New(), m: make(map[authorSeq]*list.Element)}
}

func (c *entryCache) get(k authorSeq) (*Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cached).e, true
}

func (c *entryCache) add(k authorSeq, e *Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		c.ll.MoveToFront(el)
		el.Value.(*cached).e = e
		return
	}
	c.m[k] = c.ll.PushFront(&cached{k, e})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*cached).k)
	}
}

func (c *entryCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
