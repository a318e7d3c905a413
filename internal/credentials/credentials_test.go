package credentials_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func meta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "vpn"} }

// passwords are the NT hashes of the users' valid passwords in secrets, as
// the manager derives them.
func passwords(users []v1alpha1.VPNUser, secrets map[string]map[string][]byte) map[swan.SecretKeyRef][]byte {
	out := map[swan.SecretKeyRef][]byte{}
	for i := range users {
		for _, ref := range users[i].SecretRefs() {
			if v, ok := secrets[ref.Name][ref.Key]; ok {
				if h, valid := swan.PasswordHash(ref.Key, v); valid {
					out[swan.SecretKeyRef{Name: ref.Name, Key: ref.Key}] = h
				}
			}
		}
	}
	return out
}

// decode reads the shards' data (in shard order) as the agent does.
func decode(shards ...map[string][]byte) (values map[string]map[string][]byte, hashes map[swan.SecretKeyRef][]byte) {
	return credentials.NewDecoder("vpn").Update(shardSecrets("1", shards...))
}

// shardSecrets are the gateway vpn's shard Secrets holding data, in shard
// order, at resourceVersion rv.
func shardSecrets(rv string, shards ...map[string][]byte) []*corev1.Secret {
	var out []*corev1.Secret
	for i, d := range shards {
		m := meta(credentials.ShardName("vpn", i))
		m.UID, m.ResourceVersion = types.UID(m.Name), rv
		out = append(out, &corev1.Secret{ObjectMeta: m, Data: d})
	}
	return out
}

func user(name, secret, key string) v1alpha1.VPNUser {
	return *gen.User(gen.Namespace, name, v1alpha1.Identity(name+"@example.com"), gen.WithPassword(secret, key))
}

// resources are a gateway whose objects reference Secrets every way the
// agent meets them, some of them broken.
func resources() swan.Resources {
	// RADIUS servers of a gateway that does not use them: their secrets
	// are referenced all the same.
	gw := gen.Gateway(gen.Namespace, gen.GatewayName, gen.WithAddresses("198.51.100.10"),
		gen.WithRADIUS(gen.RADIUSServer("nps", "10.3.0.5", "radius.example", "shared_secret")),
		func(g *v1alpha1.VPNGateway) { g.Spec.ClientAuth.Method = v1alpha1.ClientAuthEAPMSCHAPv2 })
	other := *gen.User(gen.Namespace, "mallory", "mallory@example.com", gen.OfGateway("other"))
	return swan.Resources{
		Gateway: *gw,
		Pools: []v1alpha1.MobilePool{*gen.Pool(gen.Namespace, "staff", "10.3.200.0/24", func(p *v1alpha1.MobilePool) {
			p.Spec.FullTunnel, p.Spec.LocalNetworks = false, []v1alpha1.CIDR{"10.3.0.0/24"}
		})},
		Users: []v1alpha1.VPNUser{
			user("alice", "alice", "password"),
			// Two users share a Secret, under keys with underscores and dots.
			user("bob", "shared.passwords", "bob_pw"),
			user("carol", "shared.passwords", "carol.pw"),
			user("dave", "dave", swan.NTHashKey),
			user("erin", "erin", swan.NTHashKey), // not hex
			user("frank", "frank", "password"),   // empty
			user("grace", "missing", "password"), // no such Secret
			user("heidi", "alice", "other"),      // no such key
			other,
		},
		Tunnels: []v1alpha1.Tunnel{*gen.Tunnel(gen.Namespace, "branch")},
		Secrets: map[string]map[string][]byte{
			"alice":            {"password": []byte("correct horse")},
			"shared.passwords": {"bob_pw": []byte("bobs secret"), "carol.pw": []byte("carols secret"), "unused": []byte("not for the agent")},
			"dave":             {swan.NTHashKey: []byte(hex.EncodeToString(swan.NTHash("daves secret")))},
			"erin":             {swan.NTHashKey: []byte("not a hash")},
			"frank":            {"password": {}},
			"mallory":          {"password": []byte("another gateway's")},
			"branch-psk":       {"psk": []byte("a long random pre-shared key")},
			"radius.example":   {"shared_secret": []byte("radius secret")},
			"vpn-ca":           {"tls.key": []byte("the CA's private key")},
		},
		Now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
	}
}

// The agent's build from the credentials Secret makes the model, and the
// users with their NT hashes, the manager's build makes from the Secrets
// themselves.
func TestAgentBuildsTheSameModel(t *testing.T) {
	in := resources()
	res := swan.Build(in)
	want, wantProblems, wantUsers := res.Model, res.Problems, res.Users
	radiusGW := *in.Gateway.DeepCopy()
	radiusGW.Spec.ClientAuth.Method = v1alpha1.ClientAuthEAPRADIUS
	wantRADIUS, _ := swan.RADIUSServers(&radiusGW, in.Secrets)

	shards := credentials.Split(credentials.Data(&in.Gateway, in.Users, in.Tunnels, in.Secrets, passwords(in.Users, in.Secrets)))
	agent := in
	agent.Secrets, agent.PasswordHashes = decode(shards[:]...)
	res = swan.Build(agent)
	got, gotProblems := res.Model, res.Problems
	if len(wantUsers) == 0 || !reflect.DeepEqual(wantUsers, res.Users) {
		t.Errorf("Users differ:\nmanager: %+v\nagent:   %+v", wantUsers, res.Users)
	}

	// The manager's own build with the hashes makes the same model and
	// the same problems as with the plain passwords.
	cached := in
	cached.PasswordHashes = passwords(in.Users, in.Secrets)
	if res := swan.Build(cached); !reflect.DeepEqual(want, res.Model) || !reflect.DeepEqual(wantProblems, res.Problems) {
		t.Errorf("The manager's build with cached hashes differs:\nwant %v\ngot  %v", wantProblems, res.Problems)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("Models differ:\nmanager: %s\nagent:   %s", swan.Render(want, swan.RenderOptions{ShowSecrets: true}), swan.Render(got, swan.RenderOptions{ShowSecrets: true}))
	}
	hashed := 0
	for _, u := range res.Users {
		if u.NTHash != ([16]byte{}) {
			hashed++
		}
	}
	if hashed != 4 {
		t.Errorf("%d users with an NT hash, want alice, bob, carol and dave", hashed)
	}
	if gotRADIUS, _ := swan.RADIUSServers(&radiusGW, agent.Secrets); !reflect.DeepEqual(wantRADIUS, gotRADIUS) || len(gotRADIUS) != 1 {
		t.Errorf("RADIUS servers: agent %+v, manager %+v", gotRADIUS, wantRADIUS)
	}
	// The manager tells a missing key from a missing Secret; the agent
	// sees neither, and only logs its problems.
	reasons := func(ps []swan.Problem) map[string]bool {
		out := map[string]bool{}
		for _, p := range ps {
			out[p.Kind+" "+p.Name] = true
		}
		return out
	}
	if !reflect.DeepEqual(reasons(wantProblems), reasons(gotProblems)) {
		t.Errorf("Problems differ:\nmanager: %v\nagent:   %v", wantProblems, gotProblems)
	}
}

// Only what charon needs reaches the Secret: no plain password, nothing of
// another gateway, no unreferenced key.
func TestDataHoldsNoPlainPassword(t *testing.T) {
	in := resources()
	data := credentials.Data(&in.Gateway, in.Users, in.Tunnels, in.Secrets, passwords(in.Users, in.Secrets))
	for k, v := range data {
		for _, plain := range []string{"correct horse", "bobs secret", "carols secret", "another gateway's", "not for the agent", "the CA's private key"} {
			if bytes.Contains(v, []byte(plain)) || strings.Contains(k, "mallory") || strings.Contains(k, "unused") || strings.Contains(k, "vpn-ca") {
				t.Errorf("Key %s holds what the agent must not get", k)
			}
		}
	}
	if got, want := data["nthash_shared.passwords_bob_pw"], swan.NTHash("bobs secret"); !bytes.Equal(got, want) {
		t.Errorf("bob's hash %x, want %x", got, want)
	}
	if got, want := data["nthash_dave_nthash"], swan.NTHash("daves secret"); !bytes.Equal(got, want) {
		t.Errorf("dave's hash %x, want %x", got, want)
	}
	if got := string(data["value_radius.example_shared_secret"]); got != "radius secret" {
		t.Errorf("RADIUS secret %q", got)
	}
	split := credentials.Split(data)
	values, hashes := decode(split[:]...)
	if _, ok := hashes[swan.SecretKeyRef{Name: "shared.passwords", Key: "carol.pw"}]; !ok {
		t.Errorf("Decode lost carol's hash: %v", hashes)
	}
	if _, ok := values["branch-psk"]["psk"]; !ok {
		t.Errorf("Decode lost the PSK: %v", values)
	}
}

// At 10,000 users, each with a Secret of their own, every credentials shard
// stays far inside the API's 1 MiB limit on a Secret's data, and the users
// spread over the shards evenly enough that one user's change rewrites
// about a sixteenth of the data: each user costs its data key (kind, Secret
// name and key) and a 16-byte hash.
func TestSizeAt10000Users(t *testing.T) {
	for _, tc := range []struct {
		what, format string
	}{
		{"short names", "u-%05d"},
		{"long names", "user-%05d-of-the-sales-department"},
	} {
		gw := gen.Gateway(gen.Namespace, gen.GatewayName)
		secrets := map[string]map[string][]byte{}
		var users []v1alpha1.VPNUser
		for i := range 10000 {
			name := fmt.Sprintf(tc.format, i)
			users = append(users, user(name, name+"-password", "password"))
			secrets[name+"-password"] = map[string][]byte{"password": []byte(fmt.Sprintf("pw-%d-%s", i, strings.Repeat("x", 20)))}
		}
		shards := credentials.Split(credentials.Data(gw, users, nil, secrets, passwords(users, secrets)))
		entries, largest := 0, 0
		for i, data := range shards {
			s := &corev1.Secret{ObjectMeta: meta(credentials.ShardName("vpn", i)), Data: data}
			entries += len(data)
			largest = max(largest, s.Size())
			// Evenly would be 625 each.
			if len(data) < 500 || len(data) > 750 {
				t.Errorf("%s: shard %d holds %d users, want about 625", tc.what, i, len(data))
			}
		}
		if entries != 10000 {
			t.Fatalf("%s: %d entries, want 10000", tc.what, entries)
		}
		t.Logf("10,000 users, %s (%q): largest shard %d bytes (protobuf)", tc.what, fmt.Sprintf(tc.format, 0)+"-password", largest)
		if largest > 1<<20/8 {
			t.Errorf("%s: a credentials shard is too large: %d bytes", tc.what, largest)
		}
	}
}

// A shard is chosen by the referenced Secret's name alone, so the entries of
// one Secret stay together and a shard's name never depends on the others.
func TestShards(t *testing.T) {
	if got := credentials.SecretNames("vpn"); len(got) != 2*credentials.Shards || got[0] != "vpn-agent-credentials-0" || got[15] != "vpn-agent-credentials-15" ||
		got[16] != "vpn-agent-credentials-0-recent" || got[31] != "vpn-agent-credentials-15-recent" {
		t.Errorf("SecretNames: %v", got)
	}
	for name, want := range map[string]bool{
		"vpn-agent-credentials-0": true, "vpn-agent-credentials-15": true,
		"vpn-agent-credentials-16": false, "vpn-agent-credentials-01": false, "vpn-agent-credentials-": false,
		"vpn-agent-credentials": false, "other-agent-credentials-1": false, "vpn-server-tls": false,
	} {
		if got := credentials.IsShard("vpn", name); got != want {
			t.Errorf("IsShard(vpn, %s) = %v, want %v", name, got, want)
		}
	}
	// FNV-1a of the name: fixed values, so a new manager writes every
	// entry into the shard an older one did.
	for name, want := range map[string]int{"alice": 7, "shared.passwords": 0, "u-00000-password": 1} {
		if got := credentials.Shard(name); got != want {
			t.Errorf("Shard(%s) = %d, want %d", name, got, want)
		}
	}
	data := map[string][]byte{"nthash_alice_password": {1}, "value_alice_psk": {2}, "nthash_shared.passwords_bob_pw": {3}}
	shards := credentials.Split(data)
	a, s := shards[credentials.Shard("alice")], shards[credentials.Shard("shared.passwords")]
	if len(a) != 2 || len(s) != 1 || s["nthash_shared.passwords_bob_pw"][0] != 3 {
		t.Errorf("Split: alice's shard %v, shared.passwords' shard %v", a, s)
	}
}

// The agent decodes only the shards that changed since its last apply; the
// result is what decoding everything would give.
func TestDecoderFollowsShardVersions(t *testing.T) {
	other := "b"
	for credentials.Shard(other) == credentials.Shard("alice") {
		other += "b"
	}
	a, b := credentials.Shard("alice"), credentials.Shard(other)
	data := map[string][]byte{
		credentials.NTHashKey("alice", "password"): {1},
		"value_alice_psk":                          {2},
		credentials.NTHashKey(other, "password"):   {3},
	}
	split := credentials.Split(data)
	secrets := shardSecrets("1", split[:]...)
	d := credentials.NewDecoder("vpn")
	values, hashes := d.Update(secrets)
	// hash is the first byte of the secret's password hash, 0 without one.
	hash := func(secret string) byte {
		if h := hashes[swan.SecretKeyRef{Name: secret, Key: "password"}]; len(h) > 0 {
			return h[0]
		}
		return 0
	}
	if hash("alice") != 1 || values["alice"]["psk"][0] != 2 || hash(other) != 3 || len(hashes) != 2 || len(values) != 1 {
		t.Fatalf("First decode: values %v hashes %v", values, hashes)
	}

	// alice's shard changes: the psk goes, the hash changes. The other
	// shard is not decoded again: an in-place change without a new
	// resourceVersion (which an API server never makes) stays unseen.
	secrets[a] = secrets[a].DeepCopy()
	secrets[a].ResourceVersion = "2"
	secrets[a].Data = map[string][]byte{credentials.NTHashKey("alice", "password"): {9}}
	secrets[b].Data[credentials.NTHashKey(other, "password")] = []byte{7}
	values, hashes = d.Update(secrets)
	if hash("alice") != 9 || len(values) != 0 || hash(other) != 3 {
		t.Errorf("After alice's shard changed: values %v hashes %v", values, hashes)
	}
	// The agent decides again only the users whose hash changed.
	if refs, valuesChanged := d.Changes(); !valuesChanged || !slices.Equal(refs, []swan.SecretKeyRef{{Name: "alice", Key: "password"}}) {
		t.Errorf("After alice's shard changed, Changes is %v, values changed %v; want alice's password and values changed", refs, valuesChanged)
	}
	// The same shard again, with the hash unchanged, changes nothing;
	// versions alone do not make a change.
	secrets[a] = secrets[a].DeepCopy()
	secrets[a].ResourceVersion = "2b"
	d.Update(secrets)
	if refs, valuesChanged := d.Changes(); len(refs) != 0 || valuesChanged {
		t.Errorf("A shard written again unchanged: Changes is %v, values changed %v; want none", refs, valuesChanged)
	}
	d.Update(secrets)
	if refs, _ := d.Changes(); len(refs) != 0 {
		t.Errorf("An Update without a new version: Changes is %v; want none", refs)
	}

	// A shard gone is a shard empty; other Secrets are ignored; a key
	// in the wrong shard is left out.
	wrong := secrets[b].DeepCopy()
	wrong.ResourceVersion = "3"
	wrong.Data = map[string][]byte{credentials.NTHashKey("alice", "other"): {5}, credentials.NTHashKey(other, "password"): {3}}
	cert := &corev1.Secret{ObjectMeta: meta("vpn-server-tls"), Data: map[string][]byte{credentials.NTHashKey(other, "x"): {6}}}
	_, hashes = d.Update([]*corev1.Secret{wrong, cert})
	if len(hashes) != 1 || hash(other) != 3 {
		t.Errorf("With alice's shard gone: hashes %v", hashes)
	}

	// Objects without a resourceVersion are decoded every time.
	plain := shardSecrets("", split[:]...)
	d = credentials.NewDecoder("vpn")
	d.Update(plain)
	plain[a].Data = map[string][]byte{}
	if _, hashes = d.Update(plain); hash("alice") != 0 {
		t.Errorf("A shard without a resourceVersion was not decoded again: %v", hashes)
	}
}
