package controllers

import (
	"hash/fnv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// conditionMemory remembers the last state of each object's conditions
// that a reconciler's announce saw. Two reconciles of one object can both
// read it from a cache that does not hold the first one's status write yet;
// both then see the same change against the same stale conditions and would
// each announce it. The second finds the state already seen and stays
// quiet, so a change is told once. A state is kept as a hash, some 60 bytes
// an entry. The zero value is ready; a nil one remembers nothing.

// maxTold bounds the memory, which would otherwise keep the entries of
// deleted objects: past it the memory starts over (some 16 MB), costing at
// most one repeated Event per object.
const maxTold = 1 << 18

type toldKey struct {
	uid  types.UID
	kind string
}

type conditionMemory struct {
	mu   sync.Mutex
	seen map[toldKey]uint64
}

// changed records c as obj's current state of c.Type and reports whether it
// differs from the one recorded before.
func (m *conditionMemory) changed(obj client.Object, c metav1.Condition) bool {
	if m == nil || obj.GetUID() == "" {
		// An object not from the API server (unit tests) has no identity to remember.
		return true
	}
	h := fnv.New64a()
	for _, s := range []string{string(c.Status), c.Reason, c.Message} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	k := toldKey{obj.GetUID(), c.Type}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.seen[k]; ok && v == h.Sum64() {
		return false
	}
	if m.seen == nil || len(m.seen) >= maxTold {
		m.seen = map[toldKey]uint64{}
	}
	m.seen[k] = h.Sum64()
	return true
}
