// Package credentials derives the Secrets a gateway's agent reads besides
// its certificate: the values its charon needs from the Secrets the gateway,
// its users and its tunnels reference. The manager writes them and the agent
// reads them, so the agent's Role names a fixed set of Secrets instead of
// granting every Secret of the namespace (the gateway's CA key and every
// plain password among them), and no plain password reaches the gateway pod.
//
// The derived data is split into Shards Secrets by a hash of the referenced
// Secret's name, each with a Secret of its recent changes (recent.go): a
// change to one user's Secret rewrites, and makes every gateway pod
// receive, that shard's recent changes instead of the data of every user. At
// 100,000 users a shard holds about 6,250 entries; a watch delivers each as
// its Secret's name and about 46 bytes (the data key and the base64 hash),
// so the shards stay under the API's 1 MiB while those names average under
// about 90 characters (TestSizeAt100000Users).
package credentials

import (
	"hash/fnv"
	"strings"

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

// IsShard reports whether name is one of the gateway's credentials Secrets:
// a shard's or its recent changes'.
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

// ShardIndex is the index of the shard the gateway's credentials Secret
// named name belongs to (the shard's own Secret or its recent changes), if
// it is one.
func ShardIndex(gateway, name string) (int, bool) {
	i, ok := v1alpha1.AgentCredentialsSecretIndex(gateway, name)
	if !ok {
		i, ok = v1alpha1.AgentRecentCredentialsSecretIndex(gateway, name)
	}
	if !ok || i >= Shards {
		return 0, false
	}
	return i, true
}
