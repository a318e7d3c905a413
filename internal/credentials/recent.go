package credentials

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Recent changes. At 100,000 users a shard's Secret is some 500 KB, and a
// write of it reaches the API server's storage and every watcher (the
// manager's cache, each gateway pod's agent) whole: for one user's change
// that is most of its latency. So each shard has a second, small Secret
// (RecentName) with the entries added, changed or removed since the
// shard's Secret was last written whole. A change of one user rewrites only
// that one; the manager folds the recent changes into the shard when they
// grow past a bound or have been quiet for a while.
//
// The two Secrets reach the agent through separate watches, in either
// order. The shard's Secret carries its generation, counting its writes
// whole (AnnotationCredentialsGeneration); the recent changes name the
// generation they apply to (AnnotationCredentialsBase), and the manager
// writes the shard before the recent changes that name its new generation.
// The agent reads (see Effective):
//   - the recent changes on top of the shard when they name its generation;
//   - the shard alone when they name an older one: the shard holds them;
//   - when they name a newer one, the shard's new version is still on its
//     way: what it read before, until it arrives.

// RecentName is the name of the Secret with the recent changes of the
// gateway's i-th shard.
func RecentName(gateway string, i int) string {
	return v1alpha1.AgentRecentCredentialsSecretName(gateway, i)
}

// SecretNames are the names of all of the gateway's credentials Secrets:
// the shards in order, then their recent changes in order. The agent's
// Role names each.
func SecretNames(gateway string) []string {
	names := make([]string, 0, 2*Shards)
	for i := range Shards {
		names = append(names, ShardName(gateway, i))
	}
	for i := range Shards {
		names = append(names, RecentName(gateway, i))
	}
	return names
}

// IsRecent reports whether name is one of the gateway's recent changes
// Secrets.
func IsRecent(gateway, name string) bool {
	i, ok := v1alpha1.AgentRecentCredentialsSecretIndex(gateway, name)
	return ok && i < Shards
}

// removedKey holds the data keys the recent changes remove from the shard,
// one per line. It has no underscore, so no entry has it as its key.
const removedKey = "removed"

// Recent is a shard's recent changes: the entries added or changed since
// the shard's generation Base, and the keys removed since.
type Recent struct {
	Base    int64
	Changed map[string][]byte
	// Removed is sorted.
	Removed []string
}

// Diff is the recent changes that make base, the data of a shard of
// generation gen, into data.
func Diff(base, data map[string][]byte, gen int64) Recent {
	r := Recent{Base: gen, Changed: map[string][]byte{}}
	for k, v := range data {
		if old, ok := base[k]; !ok || !bytes.Equal(old, v) {
			r.Changed[k] = v
		}
	}
	for k := range base {
		if _, ok := data[k]; !ok {
			r.Removed = append(r.Removed, k)
		}
	}
	slices.Sort(r.Removed)
	return r
}

// Len is the number of entries the changes add, change or remove.
func (r Recent) Len() int { return len(r.Changed) + len(r.Removed) }

// Size is about the bytes the changes' Secret holds.
func (r Recent) Size() int {
	n := 0
	for k, v := range r.Changed {
		n += len(k) + len(v)
	}
	for _, k := range r.Removed {
		n += len(k) + 1
	}
	return n
}

// Data is the data of the changes' Secret.
func (r Recent) Data() map[string][]byte {
	out := maps.Clone(r.Changed)
	if out == nil {
		out = map[string][]byte{}
	}
	if len(r.Removed) > 0 {
		out[removedKey] = []byte(strings.Join(r.Removed, "\n"))
	}
	return out
}

// Equal reports whether two changes are the same.
func (r Recent) Equal(o Recent) bool {
	return r.Base == o.Base && maps.EqualFunc(r.Changed, o.Changed, bytes.Equal) && slices.Equal(r.Removed, o.Removed)
}

// ParseRecent reads a Secret of recent changes; false when it names no
// generation.
func ParseRecent(s *corev1.Secret) (Recent, bool) {
	base, err := strconv.ParseInt(s.Annotations[v1alpha1.AnnotationCredentialsBase], 10, 64)
	if err != nil || base < 0 {
		return Recent{}, false
	}
	r := Recent{Base: base, Changed: make(map[string][]byte, len(s.Data))}
	for k, v := range s.Data {
		if k == removedKey {
			r.Removed = strings.Split(string(v), "\n")
			continue
		}
		r.Changed[k] = v
	}
	slices.Sort(r.Removed)
	return r, true
}

// Generation is the generation of a shard's Secret; 0 for one written
// before generations were counted.
func Generation(s *corev1.Secret) int64 {
	if s == nil {
		return 0
	}
	g, err := strconv.ParseInt(s.Annotations[v1alpha1.AnnotationCredentialsGeneration], 10, 64)
	if err != nil || g < 0 {
		return 0
	}
	return g
}

// inEffect is which recent changes apply on top of a shard of generation
// gen: r when it names gen; when it names a newer one (the shard's new
// version is on its way), before, the changes read until now, if they
// name gen; else none.
func inEffect(gen int64, r *Recent, before *Recent) *Recent {
	switch {
	case r != nil && r.Base == gen:
		return r
	case r != nil && r.Base > gen && before != nil && before.Base == gen:
		return before
	}
	return nil
}

// Effective is the data of a shard (nil when missing) with the recent
// changes (nil when missing) that apply to it, as an agent reading both
// for the first time has it.
func Effective(shard, recent *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	if shard != nil {
		maps.Copy(out, shard.Data)
	}
	var r *Recent
	if recent != nil {
		if parsed, ok := ParseRecent(recent); ok {
			r = &parsed
		}
	}
	if r = inEffect(Generation(shard), r, nil); r != nil {
		for _, k := range r.Removed {
			delete(out, k)
		}
		maps.Copy(out, r.Changed)
	}
	return out
}

// lookup is the value of key k in a shard's data with the changes r (nil
// for none) applied.
func lookup(shard map[string][]byte, r *Recent, k string) ([]byte, bool) {
	if r != nil {
		if v, ok := r.Changed[k]; ok {
			return v, true
		}
		if _, removed := slices.BinarySearch(r.Removed, k); removed {
			return nil, false
		}
	}
	v, ok := shard[k]
	return v, ok
}

// Update makes r, the changes from base to an earlier version of data,
// the changes to data as it is now, where only the given keys may have
// changed since (each key any number of times).
func (r *Recent) Update(base, data map[string][]byte, keys []string) {
	if r.Changed == nil {
		r.Changed = map[string][]byte{}
	}
	for _, k := range keys {
		v, inData := data[k]
		old, inBase := base[k]
		if inData && (!inBase || !bytes.Equal(old, v)) {
			r.Changed[k] = v
		} else {
			delete(r.Changed, k)
		}
		i, removed := slices.BinarySearch(r.Removed, k)
		switch gone := !inData && inBase; {
		case gone && !removed:
			r.Removed = slices.Insert(r.Removed, i, k)
		case !gone && removed:
			r.Removed = slices.Delete(r.Removed, i, i+1)
		}
	}
}
