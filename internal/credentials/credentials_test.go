package credentials_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
)

func meta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "vpn"} }

func user(name, secret, key string) v1alpha1.VPNUser {
	return v1alpha1.VPNUser{ObjectMeta: meta(name), Spec: v1alpha1.VPNUserSpec{
		GatewayRef:        v1alpha1.GatewayReference{Name: "vpn"},
		Identity:          v1alpha1.Identity(name + "@example.com"),
		PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: secret, Key: key},
	}}
}

// resources are a gateway whose objects reference Secrets every way the
// agent meets them, some of them broken.
func resources() swan.Resources {
	gw := v1alpha1.VPNGateway{ObjectMeta: meta("vpn"), Spec: v1alpha1.VPNGatewaySpec{
		Hostnames: []v1alpha1.Hostname{"vpn.example.com"},
		Addresses: []v1alpha1.IPAddress{"198.51.100.10"},
		ClientAuth: v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPMSCHAPv2, RADIUS: &v1alpha1.RADIUSSettings{Servers: []v1alpha1.RADIUSServer{
			{Name: "nps", Address: "10.3.0.5", SecretRef: v1alpha1.SecretKeyReference{Name: "radius.example", Key: "shared_secret"}},
		}}},
	}}
	other := user("mallory", "mallory", "password")
	other.Spec.GatewayRef.Name = "other"
	return swan.Resources{
		Gateway: gw,
		Pools: []v1alpha1.MobilePool{{ObjectMeta: meta("staff"), Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "vpn"}, Addresses: v1alpha1.PoolAddresses{IPv4: "10.3.200.0/24"},
			LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
		}}},
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
		Tunnels: []v1alpha1.Tunnel{{ObjectMeta: meta("branch"), Spec: v1alpha1.TunnelSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "vpn"},
			Remote:     v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.20"}, Identity: "branch.example.net"},
			Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "branch-psk", Key: "psk"}}},
			Children:   []v1alpha1.TunnelChild{{Name: "lan", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.20.0.0/16"}}},
		}}},
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

// The agent's build from the credentials Secret makes the model the
// manager's build makes from the Secrets themselves.
func TestAgentBuildsTheSameModel(t *testing.T) {
	in := resources()
	want, wantProblems := swan.Build(in)
	radiusGW := *in.Gateway.DeepCopy()
	radiusGW.Spec.ClientAuth.Method = v1alpha1.ClientAuthEAPRADIUS
	wantRADIUS, _ := swan.RADIUSServers(&radiusGW, in.Secrets)

	data := credentials.Data(&in.Gateway, in.Users, in.Tunnels, in.Secrets)
	agent := in
	agent.Secrets, agent.PasswordHashes = credentials.Decode(data)
	got, gotProblems := swan.Build(agent)
	if !reflect.DeepEqual(want, got) {
		t.Errorf("Models differ:\nmanager: %s\nagent:   %s", swan.Render(want, swan.RenderOptions{ShowSecrets: true}), swan.Render(got, swan.RenderOptions{ShowSecrets: true}))
	}
	ntlm := 0
	for _, s := range got.Secrets {
		if s.Type == "NTLM" {
			ntlm++
		}
	}
	if ntlm != 4 {
		t.Errorf("%d NTLM secrets, want alice's, bob's, carol's and dave's", ntlm)
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
	data := credentials.Data(&in.Gateway, in.Users, in.Tunnels, in.Secrets)
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
	values, hashes := credentials.Decode(data)
	if _, ok := hashes["shared.passwords"]["carol.pw"]; !ok {
		t.Errorf("Decode lost carol's hash: %v", hashes)
	}
	if _, ok := values["branch-psk"]["psk"]; !ok {
		t.Errorf("Decode lost the PSK: %v", values)
	}
}

// At 10,000 users, each with a Secret of their own, the credentials Secret
// stays inside the API's 1 MiB limit on a Secret's data and under 1 MiB as
// an object (etcd takes 1.5 MiB) while Secret name and key together stay
// under about 70 characters: each user costs its data key (kind, Secret
// name and key) and a 16-byte hash.
func TestSizeAt10000Users(t *testing.T) {
	for _, tc := range []struct {
		what, format string
	}{
		{"short names", "u-%05d"},
		{"long names", "user-%05d-of-the-sales-department"},
	} {
		gw := v1alpha1.VPNGateway{ObjectMeta: meta("vpn")}
		secrets := map[string]map[string][]byte{}
		var users []v1alpha1.VPNUser
		for i := range 10000 {
			name := fmt.Sprintf(tc.format, i)
			users = append(users, user(name, name+"-password", "password"))
			secrets[name+"-password"] = map[string][]byte{"password": []byte(fmt.Sprintf("pw-%d-%s", i, strings.Repeat("x", 20)))}
		}
		s := &corev1.Secret{ObjectMeta: meta(credentials.SecretName("vpn")), Data: credentials.Data(&gw, users, nil, secrets)}
		if len(s.Data) != 10000 {
			t.Fatalf("%s: %d entries, want 10000", tc.what, len(s.Data))
		}
		values, size := 0, s.Size()
		for _, v := range s.Data {
			values += len(v)
		}
		t.Logf("10,000 users, %s (%q): data values %d bytes, object %d bytes (protobuf)", tc.what, fmt.Sprintf(tc.format, 0)+"-password", values, size)
		if values > corev1.MaxSecretSize || size > 1<<20 {
			t.Errorf("%s: credentials Secret too large: data %d bytes, object %d bytes", tc.what, values, size)
		}
	}
}
