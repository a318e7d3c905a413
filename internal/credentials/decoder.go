package credentials

import (
	"bytes"

	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/internal/swan"
)

// Decoder holds the decoded data of one gateway's credentials Secrets:
// the plain values and the NT hashes by referenced Secret name and key, as
// swan.Resources' Secrets and PasswordHashes take them. Update looks only
// at the Secrets whose version changed: a shard's recent changes cost the
// entries they name, a shard written whole its entries, so that a change
// to one user costs the agent a few entries instead of a shard's or all
// users'. Not safe for concurrent use; the maps it hands out are its own
// and change with the next Update.
type Decoder struct {
	gateway string
	shards  [Shards]shardView
	values  map[string]map[string][]byte
	hashes  map[swan.SecretKeyRef][]byte
	// changed are the references whose hash the last Update added,
	// changed or removed; valuesChanged says whether it changed a value.
	changed       []swan.SecretKeyRef
	valuesChanged bool
}

// shardView is what the decoder read of one shard.
type shardView struct {
	// version and recentVersion are the UID and resourceVersion of the
	// shard's Secret and of its recent changes as read.
	version, recentVersion string
	gen                    int64
	data                   map[string][]byte
	// recent are the changes read last, applied are those in effect.
	recent, applied *Recent
}

// NewDecoder returns a decoder of the named gateway's shards.
func NewDecoder(gateway string) *Decoder {
	return &Decoder{gateway: gateway, values: map[string]map[string][]byte{}, hashes: map[swan.SecretKeyRef][]byte{}}
}

// Update brings the decoded data to secrets, which hold the gateway's
// credentials Secrets (one not among them is taken as empty; other
// Secrets are ignored), and returns the plain values and the NT hashes. A
// shard contributes only what belongs in it (see Shard); keys it does not
// know are ignored.
func (d *Decoder) Update(secrets []*corev1.Secret) (values map[string]map[string][]byte, hashes map[swan.SecretKeyRef][]byte) {
	var shards, recents [Shards]*corev1.Secret
	for _, s := range secrets {
		if i, ok := ShardIndex(d.gateway, s.Name); ok {
			if IsRecent(d.gateway, s.Name) {
				recents[i] = s
			} else {
				shards[i] = s
			}
		}
	}
	d.changed, d.valuesChanged = d.changed[:0], false
	for i := range Shards {
		d.updateShard(i, shards[i], recents[i])
	}
	return d.values, d.hashes
}

// Changes reports what the last Update changed: the references whose NT
// hash came, went or changed, and whether any plain value changed.
func (d *Decoder) Changes() (hashes []swan.SecretKeyRef, values bool) {
	return d.changed, d.valuesChanged
}

// secretVersion is how the decoder tells versions of a Secret apart. An
// object without a resourceVersion (not from an API server) differs every
// time.
func secretVersion(s *corev1.Secret, last string) (string, bool) {
	if s == nil {
		return "", last != ""
	}
	v := string(s.UID) + "/" + s.ResourceVersion
	return v, v != last || s.ResourceVersion == ""
}

// updateShard reads shard i's Secret and its recent changes again where
// their versions changed, and brings the entries they touch up to date.
func (d *Decoder) updateShard(i int, shard, recent *corev1.Secret) {
	v := &d.shards[i]
	version, shardChanged := secretVersion(shard, v.version)
	recentVersion, recentChanged := secretVersion(recent, v.recentVersion)
	if !shardChanged && !recentChanged {
		return
	}
	// The keys whose value may have changed: every key of the old and the
	// new shard when it changed, else those the changes named.
	touched := map[string]struct{}{}
	note := func(data map[string][]byte, r *Recent) {
		for k := range data {
			touched[k] = struct{}{}
		}
		if r != nil {
			for k := range r.Changed {
				touched[k] = struct{}{}
			}
			for _, k := range r.Removed {
				touched[k] = struct{}{}
			}
		}
	}
	if shardChanged {
		note(v.data, nil)
		v.version, v.gen, v.data = version, Generation(shard), nil
		if shard != nil {
			v.data = shard.Data
		}
		note(v.data, nil)
	}
	if recentChanged {
		v.recentVersion, v.recent = recentVersion, nil
		if recent != nil {
			if r, ok := ParseRecent(recent); ok {
				v.recent = &r
			}
		}
	}
	note(nil, v.applied)
	v.applied = inEffect(v.gen, v.recent, v.applied)
	note(nil, v.applied)
	for k := range touched {
		d.refresh(i, k)
	}
}

// refresh brings key k of shard i up to date in the decoded data.
func (d *Decoder) refresh(i int, k string) {
	kind, secret, key := splitKey(k)
	if secret == "" || key == "" || Shard(secret) != i {
		return
	}
	v := &d.shards[i]
	val, ok := lookup(v.data, v.applied, k)
	switch kind {
	case kindValue:
		old, had := d.values[secret][key]
		if had == ok && bytes.Equal(old, val) {
			return
		}
		d.valuesChanged = true
		if !ok {
			delete(d.values[secret], key)
			if len(d.values[secret]) == 0 {
				delete(d.values, secret)
			}
			return
		}
		if d.values[secret] == nil {
			d.values[secret] = map[string][]byte{}
		}
		d.values[secret][key] = val
	case kindNTHash:
		ref := swan.SecretKeyRef{Name: secret, Key: key}
		old, had := d.hashes[ref]
		if had == ok && bytes.Equal(old, val) {
			return
		}
		d.changed = append(d.changed, ref)
		if !ok {
			delete(d.hashes, ref)
			return
		}
		d.hashes[ref] = val
	}
}
