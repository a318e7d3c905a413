package controllers

import (
	"fmt"
	"maps"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ikegate/ikegate/internal/credentials"
)

// BenchmarkShardChange measures what a change of one user's Secret costs
// the credentials reconcile in a shard of 100,000 users' gateway (6,250
// entries): replacing its entries and deriving the recent changes, key by
// key as the reconciler does, against the former pass over the whole
// shard for each. Each iteration adds one user's entry and removes it
// again.
func BenchmarkShardChange(b *testing.B) {
	const entries = 100000 / credentials.Shards
	data := map[string][]byte{}
	for i := range entries {
		data[credentials.NTHashKey(fmt.Sprintf("u-%d-password", i), "password")] = make([]byte, 16)
	}
	base := shardBase{data: maps.Clone(data), gen: 1, exists: true}
	secret := "new-user-password"
	fresh := map[string][]byte{credentials.NTHashKey(secret, "password"): make([]byte, 16)}
	named := map[string]struct{}{secret: {}}
	req := credentialsRequest{Gateway: types.NamespacedName{Namespace: "vpn", Name: "vpn"}}

	b.Run("by key", func(b *testing.B) {
		var m shardMemory
		e := newShardEntries(maps.Clone(data))
		m.recent(req, base, e.data, nil, true)
		for i := 0; b.Loop(); i++ {
			in := fresh
			if i%2 == 1 {
				in = nil
			}
			m.recent(req, base, e.data, e.replace(named, in), false)
		}
	})
	b.Run("whole shard", func(b *testing.B) {
		d := maps.Clone(data)
		for i := 0; b.Loop(); i++ {
			maps.DeleteFunc(d, func(k string, _ []byte) bool {
				_, ok := named[credentials.EntrySecret(k)]
				return ok
			})
			if i%2 == 0 {
				maps.Copy(d, fresh)
			}
			credentials.Diff(base.data, d, base.gen)
		}
	})
}
