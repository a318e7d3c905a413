// Package credentials derives the one Secret a gateway's agent reads besides
// its certificate: the values its charon needs from the Secrets the gateway,
// its users and its tunnels reference. The manager writes it and the agent
// reads it, so the agent's Role names two Secrets instead of granting every
// Secret of the namespace (the gateway's CA key and every plain password
// among them), and no plain password reaches the gateway pod.
package credentials

import (
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// SecretName is the name of the gateway's credentials Secret.
func SecretName(gateway string) string { return gateway + "-agent-credentials" }

// ServerTLSSecretName is the name of the Secret cert-manager issues the
// gateway's server certificate into.
func ServerTLSSecretName(gateway string) string { return gateway + "-server-tls" }

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

// maxKeyLen is the API's limit on a Secret data key. A reference whose
// name and key together exceed it is left out, and reported as missing.
const maxKeyLen = 253

// Data returns the credentials Secret's data for a gateway, its users and
// tunnels, from the data of the Secrets they reference. References to a
// missing Secret or key are left out: the agent's build then reports them
// as missing (the manager's conditions tell a missing Secret from a missing
// key). Passwords become their NT hashes, computed as Build computes them.
func Data(gw *v1alpha1.VPNGateway, users []v1alpha1.VPNUser, tunnels []v1alpha1.Tunnel, secrets map[string]map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	value := func(ref v1alpha1.SecretKeyReference) {
		if v, ok := secrets[ref.Name][ref.Key]; ok && len(dataKey(kindValue, ref.Name, ref.Key)) <= maxKeyLen {
			out[dataKey(kindValue, ref.Name, ref.Key)] = v
		}
	}
	if ca := gw.Spec.ClientAuth.ClientCA; ca != nil {
		value(*ca)
	}
	if r := gw.Spec.ClientAuth.RADIUS; r != nil {
		for _, s := range r.Servers {
			value(s.SecretRef)
		}
	}
	for i := range tunnels {
		t := &tunnels[i]
		if t.Spec.GatewayRef.Name != gw.Name {
			continue
		}
		if p := t.Spec.Auth.PSK; p != nil {
			value(p.SecretRef)
		}
		if c := t.Spec.Auth.Certificate; c != nil {
			value(c.PeerCARef)
		}
	}
	for i := range users {
		u := &users[i]
		ref := u.Spec.PasswordSecretRef
		if ref == nil || u.Spec.GatewayRef.Name != gw.Name {
			continue
		}
		v, ok := secrets[ref.Name][ref.Key]
		if !ok {
			continue
		}
		k := dataKey(kindNTHash, ref.Name, ref.Key)
		if _, done := out[k]; done || len(k) > maxKeyLen {
			continue
		}
		// A value Build refuses arrives empty, and the agent's build
		// refuses it too; the manager's conditions say why.
		h, _ := swan.PasswordHash(ref.Key, v)
		out[k] = h
	}
	return out
}

// Decode splits a credentials Secret's data into swan.Resources' Secrets
// (the plain values) and PasswordHashes (the NT hashes), both by referenced
// Secret name and key. Keys it does not know are ignored.
func Decode(data map[string][]byte) (values, hashes map[string]map[string][]byte) {
	values, hashes = map[string]map[string][]byte{}, map[string]map[string][]byte{}
	for k, v := range data {
		kind, rest, ok := strings.Cut(k, "_")
		if !ok {
			continue
		}
		secret, key, ok := strings.Cut(rest, "_")
		if !ok || secret == "" || key == "" {
			continue
		}
		var into map[string]map[string][]byte
		switch kind {
		case kindValue:
			into = values
		case kindNTHash:
			into = hashes
		default:
			continue
		}
		if into[secret] == nil {
			into[secret] = map[string][]byte{}
		}
		into[secret][key] = v
	}
	return values, hashes
}
