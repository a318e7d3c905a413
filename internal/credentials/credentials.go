// Package credentials derives the Secrets a gateway's agent reads besides
// its certificate: the values its charon needs from the Secrets the gateway,
// its users and its tunnels reference. The manager writes them and the agent
// reads them, so the agent's Role names a fixed set of Secrets instead of
// granting every Secret of the namespace (the gateway's CA key and every
// plain password among them), and no plain password reaches the gateway pod.
//
// The derived data is split into Shards Secrets by a hash of the referenced
// Secret's name: a change to one user's Secret rewrites, and makes every
// gateway pod receive, one shard instead of the data of every user. At
// 100,000 users a shard holds about 6,250 entries; a watch delivers each as
// its Secret's name and about 46 bytes (the data key and the base64 hash),
// so the shards stay under the API's 1 MiB while those names average under
// about 90 characters (TestSizeAt100000Users).
package credentials

import (
	"hash/fnv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// Shards is the number of credentials Secrets per gateway. It is part of
// the agent's Role (which names each shard), so changing it needs the
// manager and the agents of every gateway rolled together.
const Shards = 16

// ShardName is the name of the gateway's i-th credentials Secret.
func ShardName(gateway string, i int) string {
	return v1alpha1.AgentCredentialsSecretName(gateway, i)
}

// ShardNames are the names of all of the gateway's credentials Secrets, in
// shard order.
func ShardNames(gateway string) []string {
	names := make([]string, Shards)
	for i := range names {
		names[i] = ShardName(gateway, i)
	}
	return names
}

// IsShard reports whether name is one of the gateway's credentials Secrets.
func IsShard(gateway, name string) bool {
	_, ok := ShardIndex(gateway, name)
	return ok
}

// Shard is the shard that holds what is derived from the referenced Secret
// named secret: stable across restarts and versions (FNV-1a of the name).
func Shard(secret string) int {
	h := fnv.New32a()
	h.Write([]byte(secret))
	return int(h.Sum32() % Shards)
}

// Data keys are "<kind>_<secret>_<key>". Secret names are DNS subdomains
// ([a-z0-9.-]) and kinds contain no underscore, so the first two
// underscores split a data key unambiguously even when the referenced key
// contains underscores itself.
const (
	// kindValue holds a referenced value as it is: a PSK, a CA bundle, a
	// RADIUS shared secret.
	kindValue = "value"
	// kindNTHash holds the NT hash (16 bytes) of a referenced password.
	kindNTHash = "nthash"
)

func dataKey(kind, secret, key string) string { return kind + "_" + secret + "_" + key }

// NTHashKey is the data key that holds the NT hash of the password under
// key in the Secret named secret, in shard Shard(secret).
func NTHashKey(secret, key string) string { return dataKey(kindNTHash, secret, key) }

// maxKeyLen is the API's limit on a Secret data key. The API refuses a
// SecretKeyReference whose name and key together would exceed it; one
// stored before that rule is left out, and reported as missing.
const maxKeyLen = 253

// Data returns the credentials' data (all shards together, see Split) for
// a gateway, its users and tunnels, from what the Secrets they reference
// hold, as swan.Resources takes it: values by Secret name and key, and the
// NT hashes of the users' valid passwords.
// References to a missing Secret or key are left out: the agent's build
// then reports them as missing (the manager's conditions tell a missing
// Secret from a missing key).
func Data(gw *v1alpha1.VPNGateway, users []v1alpha1.VPNUser, tunnels []v1alpha1.Tunnel, values map[string]map[string][]byte, hashes map[swan.SecretKeyRef][]byte) map[string][]byte {
	out := map[string][]byte{}
	value := func(ref v1alpha1.SecretKeyReference) {
		if v, ok := values[ref.Name][ref.Key]; ok && len(dataKey(kindValue, ref.Name, ref.Key)) <= maxKeyLen {
			out[dataKey(kindValue, ref.Name, ref.Key)] = v
		}
	}
	for _, ref := range gw.SecretRefs() {
		value(ref)
	}
	for i := range tunnels {
		if t := &tunnels[i]; t.Spec.GatewayRef.Name == gw.Name {
			for _, ref := range t.SecretRefs() {
				value(ref)
			}
		}
	}
	// A user's references are passwords: only their NT hashes go out.
	for i := range users {
		u := &users[i]
		if u.Spec.GatewayRef.Name != gw.Name {
			continue
		}
		for _, ref := range u.SecretRefs() {
			// A value Build refuses arrives empty, and the agent's build
			// refuses it too; the manager's conditions say why.
			h, ok := hashes[swan.SecretKeyRef{Name: ref.Name, Key: ref.Key}]
			if _, invalid := values[ref.Name][ref.Key]; !ok && invalid {
				h, ok = nil, true
			}
			if k := dataKey(kindNTHash, ref.Name, ref.Key); ok && len(k) <= maxKeyLen {
				out[k] = h
			}
		}
	}
	return out
}

// Split divides Data's result into the shards' data: each entry goes to the
// Shard of the Secret it was derived from. Every shard is non-nil.
func Split(data map[string][]byte) [Shards]map[string][]byte {
	var out [Shards]map[string][]byte
	for i := range out {
		out[i] = map[string][]byte{}
	}
	for k, v := range data {
		_, secret, _ := splitKey(k)
		out[Shard(secret)][k] = v
	}
	return out
}

// EntrySecret is the name of the referenced Secret a data key's entry was
// derived from.
func EntrySecret(k string) string {
	_, secret, _ := splitKey(k)
	return secret
}

func splitKey(k string) (kind, secret, key string) {
	kind, rest, _ := strings.Cut(k, "_")
	secret, key, _ = strings.Cut(rest, "_")
	return kind, secret, key
}

// Decoder holds the decoded data of one gateway's credentials shards:
// the plain values and the NT hashes by referenced Secret name and key, as
// swan.Resources' Secrets and PasswordHashes take them. Update decodes only
// the shards whose version changed, so that a change to one user costs the
// agent one shard (about 1/Shards of the users) instead of all of them.
// Not safe for concurrent use; the maps it hands out are its own and
// change with the next Update.
type Decoder struct {
	gateway string
	// version is the UID and resourceVersion of each decoded shard.
	version [Shards]string
	// entries are the references each shard contributed.
	entries [Shards][]entry
	values  map[string]map[string][]byte
	hashes  map[swan.SecretKeyRef][]byte
	// changed are the references whose hash the last Update added,
	// changed or removed; valuesChanged says whether it changed a value.
	changed       []swan.SecretKeyRef
	valuesChanged bool
}

type entry struct{ kind, secret, key string }

// NewDecoder returns a decoder of the named gateway's shards.
func NewDecoder(gateway string) *Decoder {
	return &Decoder{gateway: gateway, values: map[string]map[string][]byte{}, hashes: map[swan.SecretKeyRef][]byte{}}
}

// Update brings the decoded data to secrets, which hold the gateway's
// shards (a shard not among them is taken as empty; other Secrets are
// ignored), and returns the plain values and the NT hashes. A shard
// contributes only what belongs in it (see Shard); keys it does not know
// are ignored.
func (d *Decoder) Update(secrets []*corev1.Secret) (values map[string]map[string][]byte, hashes map[swan.SecretKeyRef][]byte) {
	var current [Shards]*corev1.Secret
	for _, s := range secrets {
		if i, ok := ShardIndex(d.gateway, s.Name); ok {
			current[i] = s
		}
	}
	d.changed, d.valuesChanged = d.changed[:0], false
	for i, s := range current {
		version := ""
		if s != nil {
			version = string(s.UID) + "/" + s.ResourceVersion
		}
		// An object without a resourceVersion (not from an API server)
		// is decoded every time.
		if version == d.version[i] && (s == nil || s.ResourceVersion != "") {
			continue
		}
		before := d.shardHashes(i)
		d.drop(i)
		d.version[i] = version
		if s != nil {
			d.decode(i, s)
		}
		d.compare(i, before)
	}
	return d.values, d.hashes
}

// Changes reports what the last Update changed: the references whose NT
// hash came, went or changed, and whether any plain value changed.
func (d *Decoder) Changes() (hashes []swan.SecretKeyRef, values bool) {
	return d.changed, d.valuesChanged
}

// shardHashes are the hashes shard i holds now; a shard's values count as
// changed whenever it is decoded again.
func (d *Decoder) shardHashes(i int) map[swan.SecretKeyRef]string {
	out := map[swan.SecretKeyRef]string{}
	for _, e := range d.entries[i] {
		if e.kind != kindNTHash {
			d.valuesChanged = true
			continue
		}
		ref := swan.SecretKeyRef{Name: e.secret, Key: e.key}
		out[ref] = string(d.hashes[ref])
	}
	return out
}

// compare records how shard i's hashes differ from before.
func (d *Decoder) compare(i int, before map[swan.SecretKeyRef]string) {
	for _, e := range d.entries[i] {
		if e.kind != kindNTHash {
			d.valuesChanged = true
			continue
		}
		ref := swan.SecretKeyRef{Name: e.secret, Key: e.key}
		if h, ok := before[ref]; !ok || h != string(d.hashes[ref]) {
			d.changed = append(d.changed, ref)
		}
		delete(before, ref)
	}
	for ref := range before {
		d.changed = append(d.changed, ref)
	}
}

// decode adds what Secret s holds for shard i.
func (d *Decoder) decode(i int, s *corev1.Secret) {
	for k, v := range s.Data {
		kind, secret, key := splitKey(k)
		if secret == "" || key == "" || Shard(secret) != i {
			continue
		}
		switch kind {
		case kindValue:
			if d.values[secret] == nil {
				d.values[secret] = map[string][]byte{}
			}
			d.values[secret][key] = v
		case kindNTHash:
			d.hashes[swan.SecretKeyRef{Name: secret, Key: key}] = v
		default:
			continue
		}
		d.entries[i] = append(d.entries[i], entry{kind, secret, key})
	}
}

// drop removes what shard i contributed.
func (d *Decoder) drop(i int) {
	for _, e := range d.entries[i] {
		if e.kind == kindNTHash {
			delete(d.hashes, swan.SecretKeyRef{Name: e.secret, Key: e.key})
			continue
		}
		delete(d.values[e.secret], e.key)
		if len(d.values[e.secret]) == 0 {
			delete(d.values, e.secret)
		}
	}
	d.entries[i] = d.entries[i][:0]
}

// ShardIndex is the index of the gateway's credentials Secret named name,
// if it is one.
func ShardIndex(gateway, name string) (int, bool) {
	i, ok := v1alpha1.AgentCredentialsSecretIndex(gateway, name)
	if !ok || i >= Shards {
		return 0, false
	}
	return i, true
}
