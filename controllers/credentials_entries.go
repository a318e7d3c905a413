package controllers

import (
	"github.com/ikegate/ikegate/internal/credentials"
)

// shardEntries is a shard's data as last derived, with its keys by the
// Secret each entry derives from, so that a change of one Secret touches
// that Secret's entries alone: at 100,000 users a shard holds about
// 6,250, and a pass over them for each change was most of a change's
// time.
type shardEntries struct {
	data     map[string][]byte
	bySecret map[string][]string
}

func newShardEntries(data map[string][]byte) *shardEntries {
	e := &shardEntries{data: data, bySecret: make(map[string][]string, len(data))}
	for k := range data {
		s := credentials.EntrySecret(k)
		e.bySecret[s] = append(e.bySecret[s], k)
	}
	return e
}

// replace puts fresh's entries of the named Secrets in place of their
// present ones, and returns the keys it removed or set.
func (e *shardEntries) replace(named map[string]struct{}, fresh map[string][]byte) []string {
	var touched []string
	for s := range named {
		for _, k := range e.bySecret[s] {
			delete(e.data, k)
			touched = append(touched, k)
		}
		delete(e.bySecret, s)
	}
	for k, v := range fresh {
		s := credentials.EntrySecret(k)
		if _, ok := named[s]; ok {
			e.data[k] = v
			e.bySecret[s] = append(e.bySecret[s], k)
			touched = append(touched, k)
		}
	}
	return touched
}

// recent returns the shard's recent changes, data against base. While
// the memory holds those of the same base, it compares only the touched
// keys again; with all (the shard derived whole) or another base, every
// key. The result is the memory's: the next reconcile of the shard
// changes it.
func (m *shardMemory) recent(req credentialsRequest, base shardBase, data map[string][]byte, touched []string, all bool) credentials.Recent {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state(req)
	if all || !s.diffKnown || s.diff.Base != base.gen {
		s.diff = credentials.Diff(base.data, data, base.gen)
	} else {
		s.diff.Update(base.data, data, touched)
	}
	s.diffKnown = true
	return s.diff
}

// folded records that the shard was written whole as generation gen: no
// change is recent.
func (m *shardMemory) folded(req credentialsRequest, gen int64) credentials.Recent {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state(req)
	s.diff, s.diffKnown = credentials.Recent{Base: gen, Changed: map[string][]byte{}}, true
	return s.diff
}
