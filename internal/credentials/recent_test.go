package credentials_test

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
)

// writer plays the manager for one shard: its data, the shard's Secret as
// last written whole, and every version of both Secrets in write order.
type writer struct {
	name, recentName string
	gen              int64
	base             map[string][]byte
	rv               int
	shards, recents  []*corev1.Secret
	// recentWritten are the changes the latest recent Secret holds.
	recentWritten credentials.Recent
}

func (w *writer) nextRV() string { w.rv++; return strconv.Itoa(w.rv) }

// fold writes the shard whole with data, then empty recent changes naming
// its new generation.
func (w *writer) fold(data map[string][]byte) {
	w.gen++
	w.base = maps.Clone(data)
	w.shards = append(w.shards, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: w.name, UID: "s", ResourceVersion: w.nextRV(),
			Annotations: map[string]string{v1alpha1.AnnotationCredentialsGeneration: strconv.FormatInt(w.gen, 10)}},
		Data: maps.Clone(data),
	})
	w.writeRecent(data)
}

// writeRecent writes the changes from the shard to data.
func (w *writer) writeRecent(data map[string][]byte) {
	r := credentials.Diff(w.base, data, w.gen)
	w.recentWritten = r
	w.recents = append(w.recents, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: w.recentName, UID: "r", ResourceVersion: w.nextRV(),
			Annotations: map[string]string{v1alpha1.AnnotationCredentialsBase: strconv.FormatInt(r.Base, 10)}},
		Data: r.Data(),
	})
}

// decodeAll is what the entries of data decode to when they are in the
// right shard.
func decodeAll(shard int, data map[string][]byte) (map[string]map[string][]byte, map[swan.SecretKeyRef][]byte) {
	values, hashes := map[string]map[string][]byte{}, map[swan.SecretKeyRef][]byte{}
	for k, v := range data {
		kind, rest, _ := strings.Cut(k, "_")
		secret, key, _ := strings.Cut(rest, "_")
		if secret == "" || key == "" || credentials.Shard(secret) != shard {
			continue
		}
		switch kind {
		case "nthash":
			hashes[swan.SecretKeyRef{Name: secret, Key: key}] = v
		case "value":
			if values[secret] == nil {
				values[secret] = map[string][]byte{}
			}
			values[secret][key] = v
		}
	}
	return values, hashes
}

// The agent reads a shard's Secret and its recent changes through two
// watches, each of which may lag behind the other. Whatever versions it
// holds, the decoded data is the manager's data as it was at one of its
// writes, never older than what the decoder held before; once both
// watches caught up it is the manager's data now; and Changes names
// exactly the hashes that changed.
func TestDecoderFollowsRecentChangesInAnyOrder(t *testing.T) {
	const shard = 3
	var names []string
	for n := 0; len(names) < 12; n++ {
		if s := fmt.Sprintf("u%d", n); credentials.Shard(s) == shard {
			names = append(names, s)
		}
	}
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 18))
		w := &writer{name: credentials.ShardName("vpn", shard), recentName: credentials.RecentName("vpn", shard)}
		data := map[string][]byte{}
		w.fold(data)
		// history is the manager's data at each write of a recent Secret
		// (a fold writes one too): the states the agent may be in.
		history := []map[string][]byte{{}}
		d := credentials.NewDecoder("vpn")
		var (
			seenShard, seenRecent, at int
			held                      map[swan.SecretKeyRef][]byte
			lagged, folds             int
		)
		for step := range 400 {
			// The manager changes an entry, then writes the changes or
			// folds them.
			s := names[rng.IntN(len(names))]
			switch k := credentials.NTHashKey(s, "pw"); rng.IntN(4) {
			case 0:
				delete(data, k)
			case 1:
				data["value_"+s+"_psk"] = []byte{byte(rng.IntN(3))}
			case 2:
				delete(data, "value_"+s+"_psk")
			default:
				data[k] = []byte{byte(rng.IntN(4))}
			}
			if rng.IntN(6) == 0 {
				w.fold(data)
				folds++
			} else {
				w.writeRecent(data)
			}
			history = append(history, maps.Clone(data))
			// Each watch moves on by some versions, maybe none.
			if rng.IntN(3) == 0 {
				seenShard = min(len(w.shards)-1, seenShard+1+rng.IntN(2))
			}
			seenRecent = min(len(w.recents)-1, seenRecent+rng.IntN(3))
			if step == 399 {
				seenShard, seenRecent = len(w.shards)-1, len(w.recents)-1
			}
			sh, re := w.shards[seenShard], w.recents[seenRecent]
			if r, _ := credentials.ParseRecent(re); r.Base > credentials.Generation(sh) {
				lagged++
			}
			before := held
			values, hashes := d.Update([]*corev1.Secret{sh, re})
			// The first write at or after the last match that decodes
			// to what the decoder holds.
			found := false
			for j := at; j < len(history); j++ {
				if wv, wh := decodeAll(shard, history[j]); maps.EqualFunc(wh, hashes, bytes.Equal) && equalValues(wv, values) {
					at, found = j, true
					break
				}
			}
			if !found {
				t.Fatalf("seed %d step %d (shard v%d, changes v%d): decoded hashes %v values %v are no state of the manager's since write %d", seed, step, seenShard, seenRecent, hashes, values, at)
			}
			held = maps.Clone(hashes)
			refs, _ := d.Changes()
			if want := changedRefs(before, hashes); !slices.Equal(sortedRefs(refs), want) {
				t.Fatalf("seed %d step %d: Changes names %v, want %v", seed, step, sortedRefs(refs), want)
			}
		}
		if _, hashes := decodeAll(shard, data); !maps.EqualFunc(held, hashes, bytes.Equal) {
			t.Fatalf("seed %d: caught up, the decoder holds %v, want the manager's %v", seed, held, hashes)
		}
		if lagged == 0 || folds == 0 {
			t.Fatalf("seed %d: %d folds and %d steps with the changes ahead of the shard; the test needs both", seed, folds, lagged)
		}
	}
}

func equalValues(a, b map[string]map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y map[string][]byte) bool { return maps.EqualFunc(x, y, bytes.Equal) })
}

func cloneValues(v map[string]map[string][]byte) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for k, m := range v {
		out[k] = maps.Clone(m)
	}
	return out
}

func changedRefs(before, after map[swan.SecretKeyRef][]byte) []swan.SecretKeyRef {
	var out []swan.SecretKeyRef
	for ref, h := range after {
		if old, ok := before[ref]; !ok || !bytes.Equal(old, h) {
			out = append(out, ref)
		}
	}
	for ref := range before {
		if _, ok := after[ref]; !ok {
			out = append(out, ref)
		}
	}
	return sortedRefs(out)
}

func sortedRefs(refs []swan.SecretKeyRef) []swan.SecretKeyRef {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(a, b swan.SecretKeyRef) int { return strings.Compare(a.Name+"/"+a.Key, b.Name+"/"+b.Key) })
	return out
}

// Diff and Data round-trip through a Secret, removals included.
func TestRecentChangesRoundTrip(t *testing.T) {
	base := map[string][]byte{"nthash_a_pw": {1}, "nthash_b_pw": {2}, "value_c_psk": {3}}
	data := map[string][]byte{"nthash_a_pw": {9}, "value_c_psk": {3}, "nthash_d_pw": {4}}
	r := credentials.Diff(base, data, 7)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID("x"), Annotations: map[string]string{v1alpha1.AnnotationCredentialsBase: "7"}},
		Data:       r.Data(),
	}
	back, ok := credentials.ParseRecent(s)
	if !ok || !back.Equal(r) || r.Len() != 3 || !slices.Equal(r.Removed, []string{"nthash_b_pw"}) {
		t.Fatalf("Diff %+v came back as %+v (%v)", r, back, ok)
	}
	shard := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationCredentialsGeneration: "7"}}, Data: base}
	if got := credentials.Effective(shard, s); !maps.EqualFunc(got, data, bytes.Equal) {
		t.Errorf("The shard with its changes is %v, want %v", got, data)
	}
	shard.Annotations[v1alpha1.AnnotationCredentialsGeneration] = "8"
	if got := credentials.Effective(shard, s); !maps.EqualFunc(got, base, bytes.Equal) {
		t.Errorf("A shard newer than the changes is %v alone, want %v", got, base)
	}
	delete(s.Annotations, v1alpha1.AnnotationCredentialsBase)
	if _, ok := credentials.ParseRecent(s); ok {
		t.Error("Changes without a base generation were read")
	}
}

// TestRecentUpdateAgreesWithDiff changes random keys of a shard, some more
// than once and some back to what the base holds, and checks after each
// batch that updating the changes by the touched keys gives what a diff of
// the whole shard gives.
func TestRecentUpdateAgreesWithDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 18))
	key := func() string { return fmt.Sprintf("nthash_u%02d_password", rng.IntN(40)) }
	base := map[string][]byte{}
	for range 25 {
		base[key()] = []byte{byte(rng.IntN(3))}
	}
	data := maps.Clone(base)
	r := credentials.Diff(base, data, 3)
	for batch := range 300 {
		var touched []string
		for range 1 + rng.IntN(4) {
			k := key()
			switch rng.IntN(3) {
			case 0:
				delete(data, k)
			case 1:
				data[k] = []byte{byte(rng.IntN(3))}
			default:
				if v, ok := base[k]; ok {
					data[k] = v
				}
			}
			touched = append(touched, k)
		}
		r.Update(base, data, touched)
		if want := credentials.Diff(base, data, 3); !r.Equal(want) {
			t.Fatalf("batch %d: updated %+v, diffed %+v", batch, r, want)
		}
	}
	if r.Len() == 0 {
		t.Fatal("no changes left at the end: the batches tested nothing")
	}
}
