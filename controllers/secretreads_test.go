package controllers

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// What a read hands Build for each kind of reference: values as they are,
// a password as its NT hash only, an invalid password as a stand-in Build
// refuses the same way, and a missing key or Secret as missing.
func TestSecretReadsKeepOnlyWhatIsUsed(t *testing.T) {
	c := fakeReader(t,
		gen.Secret(gen.Namespace, "alice", map[string]string{"password": "correct horse", "other": "not used"}),
		gen.Secret(gen.Namespace, "erin", map[string]string{swan.NTHashKey: "not hex"}),
		gen.Secret(gen.Namespace, "frank", map[string]string{"password": ""}),
		gen.Secret(gen.Namespace, "branch-psk", map[string]string{"psk": "a pre-shared key"}),
	)
	r := newSecretReads(c, c)
	got, err := r.read(context.Background(), gen.Namespace, []secretUse{
		{Name: "alice", Key: "password", Password: true},
		{Name: "alice", Key: "missing", Password: true},
		{Name: "erin", Key: swan.NTHashKey, Password: true},
		{Name: "frank", Key: "password", Password: true},
		{Name: "branch-psk", Key: "psk"},
		{Name: "gone", Key: "psk"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := got.Hashes[swan.SecretKeyRef{Name: "alice", Key: "password"}]; !bytes.Equal(h, swan.NTHash("correct horse")) {
		t.Errorf("alice's hash %x", h)
	}
	if v, ok := got.Values["alice"]; !ok || len(v) != 0 {
		t.Errorf("alice's values %q: want the Secret found, none of its keys", v)
	}
	if len(got.Hashes) != 1 {
		t.Errorf("hashes %v: want alice's only", got.Hashes)
	}
	if v := got.Values["erin"][swan.NTHashKey]; len(v) == 0 || bytes.Contains(v, []byte("not hex")) {
		t.Errorf("erin's invalid hash reads %q: want a stand-in, not the value", v)
	}
	if v, ok := got.Values["frank"]["password"]; !ok || len(v) != 0 {
		t.Errorf("frank's empty password reads %q, %v", v, ok)
	}
	if string(got.Values["branch-psk"]["psk"]) != "a pre-shared key" {
		t.Errorf("PSK %q", got.Values["branch-psk"]["psk"])
	}
	if _, ok := got.Values["gone"]; ok {
		t.Error("a Secret that does not exist was found")
	}
	// Build reports each as it would from the Secrets themselves.
	in := swan.Resources{Gateway: *gateway(), Users: []v1alpha1.VPNUser{
		*gen.User(gen.Namespace, "erin", "erin@example.com", gen.Stored, gen.WithPassword("erin", swan.NTHashKey)),
		*gen.User(gen.Namespace, "frank", "frank@example.com", gen.Stored),
		*gen.User(gen.Namespace, "heidi", "heidi@example.com", gen.Stored, gen.WithPassword("alice", "missing")),
	}, Now: now}
	direct := in
	direct.Secrets = map[string]map[string][]byte{"alice": {"password": []byte("correct horse")}, "erin": {swan.NTHashKey: []byte("not hex")}, "frank": {"password": {}}}
	read := in
	read.Secrets, read.PasswordHashes = got.Values, got.Hashes
	want, have := swan.Build(direct).Problems, swan.Build(read).Problems
	if len(want) != 3 || !reflect.DeepEqual(want, have) {
		t.Errorf("problems from the Secrets:\n%v\nfrom the read:\n%v", want, have)
	}
}

// A list of the namespace pays when many of its Secrets are stale (a cold
// start), not for the few hundred new users of a bulk import's moment in a
// namespace of 100,000.
func TestWorthListing(t *testing.T) {
	for _, c := range []struct {
		stale, listed int
		want          bool
	}{
		{stale: 40, listed: 40, want: true},
		{stale: 100000, listed: 100000, want: true},
		{stale: 8, listed: 8, want: false},
		{stale: 30, listed: 100, want: true},
		{stale: 300, listed: 100000, want: false},
		{stale: 12501, listed: 100000, want: true},
	} {
		if got := worthListing(c.stale, c.listed); got != c.want {
			t.Errorf("%d stale of %d: listing %v, want %v", c.stale, c.listed, got, c.want)
		}
	}
}
