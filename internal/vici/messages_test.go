package vici_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// tree turns a message into plain maps and slices for cmp.
func tree(m *govici.Message) map[string]any {
	out := map[string]any{}
	for _, k := range m.Keys() {
		switch v := m.Get(k).(type) {
		case *govici.Message:
			out[k] = tree(v)
		default:
			out[k] = v
		}
	}
	return out
}

func TestConnMessage(t *testing.T) {
	c := creds(t)
	certs := vici.IndexCerts([]swan.Cert{{Name: "gw", PEM: c.gwPEM}, {Name: "ca", Type: "x509ca", PEM: c.caPEM}})
	conn := swan.Connection{
		Name:          "mobile",
		Version:       2,
		LocalAddrs:    []string{"192.0.2.1"},
		Proposals:     []string{"aes256gcm16-prfsha256-x25519", "aes256-sha256-modp2048"},
		Pools:         []string{"mobile4", "mobile6"},
		Mobike:        true,
		DPDDelay:      30 * time.Second,
		DPDTimeout:    1500 * time.Millisecond,
		Fragmentation: "yes",
		SendCert:      "always",
		SendCertReq:   true,
		Unique:        "replace",
		KeyingTries:   3,
		RekeyTime:     8 * time.Hour,
		Local:         []swan.Auth{{Method: "pubkey", ID: "vpn.example.com", Certs: []string{"gw"}}},
		Remote: []swan.Auth{
			{Method: "pubkey", CACerts: []string{"ca"}, Revocation: "ifuri", Round: 1},
			{Name: "eap", Method: "eap-mschapv2", EAPID: "%any", Groups: []string{"staff"}, Round: 2},
		},
		Children: []swan.Child{{
			Name:         "lan",
			Mode:         "tunnel",
			LocalTS:      []string{"10.3.0.0/24", "10.4.0.0/16"},
			ESPProposals: []string{"aes256gcm16"},
			RekeyTime:    time.Hour,
			StartAction:  "none",
			DPDAction:    "clear",
			HostAccess:   true,
		}},
	}
	m, err := vici.ConnMessage(conn, certs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"mobile": map[string]any{
		"version":       "2",
		"local_addrs":   []string{"192.0.2.1"},
		"proposals":     []string{"aes256gcm16-prfsha256-x25519", "aes256-sha256-modp2048"},
		"pools":         []string{"mobile4", "mobile6"},
		"encap":         "no",
		"mobike":        "yes",
		"aggressive":    "no",
		"dpd_delay":     "30",
		"dpd_timeout":   "2",
		"fragmentation": "yes",
		"send_cert":     "always",
		"send_certreq":  "yes",
		"unique":        "replace",
		"keyingtries":   "3",
		"rekey_time":    "28800",
		"local": map[string]any{
			"auth": "pubkey", "id": "vpn.example.com", "certs": []string{string(c.gwPEM)}, "round": "0",
		},
		"remote": map[string]any{
			"auth": "pubkey", "cacerts": []string{string(c.caPEM)}, "revocation": "ifuri", "round": "1",
		},
		"remote-eap": map[string]any{
			"auth": "eap-mschapv2", "eap_id": "%any", "groups": []string{"staff"}, "round": "2",
		},
		"children": map[string]any{"lan": map[string]any{
			"mode":          "tunnel",
			"local_ts":      []string{"10.3.0.0/24", "10.4.0.0/16"},
			"esp_proposals": []string{"aes256gcm16"},
			"rekey_time":    "3600",
			"start_action":  "none",
			"dpd_action":    "clear",
			"hostaccess":    "yes",
		}},
	}}
	if diff := cmp.Diff(want, tree(m)); diff != "" {
		t.Errorf("load-conn message (-want +got):\n%s", diff)
	}
	// swanctl.conf order matters for auth rounds only through "round", but
	// keys must come out in a stable order for the digest.
	if got := m.Get("mobile").(*govici.Message).Keys(); got[0] != "version" {
		t.Errorf("First key = %q, want version", got[0])
	}
}

func TestConnMessageRefusesUnknownCertificate(t *testing.T) {
	conn := mobileConn("mobile", "mobile4")
	_, err := vici.ConnMessage(conn, vici.IndexCerts(nil))
	if err == nil || !strings.Contains(err.Error(), `connection mobile: local: certificate "gw" is not in the model`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSharedMessageIsRawNTLM(t *testing.T) {
	hash := []byte{0xa4, 0xf4, 0x9c, 0x40, 0x65, 0x10, 0xbd, 0xca, 0xb6, 0x82, 0x4e, 0xe7, 0xc3, 0x0f, 0xd8, 0x52}
	m, err := vici.SharedMessage(swan.Secret{Name: "ntlm-jimp", Type: "NTLM", Owners: []string{"jimp@example.com"}, Data: hash})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "ntlm-jimp", "type": "NTLM", "data": string(hash), "owners": []string{"jimp@example.com"}}
	if diff := cmp.Diff(want, tree(m)); diff != "" {
		t.Errorf("load-shared message (-want +got):\n%s", diff)
	}
	if _, err := vici.SharedMessage(swan.Secret{Name: "empty", Type: "EAP"}); err == nil || !strings.Contains(err.Error(), "secret empty") {
		t.Errorf("Empty secret: err = %v", err)
	}
}

func TestPoolMessageSendsOneAttributePerValue(t *testing.T) {
	m, err := vici.PoolMessage(swan.Pool{Name: "mobile4", Addrs: "10.3.200.0/24", Attributes: []swan.Attribute{
		{Key: "dns", Values: []string{"10.3.0.1", "10.3.0.2"}},
		{Key: "split_include", Values: []string{"10.3.0.0/24"}},
		{Key: "25", Values: []string{"example.com", "example.org"}},
		{Key: "28675", Values: []string{"example.com example.org"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"mobile4": map[string]any{
		"addrs":         "10.3.200.0/24",
		"dns":           []string{"10.3.0.1", "10.3.0.2"},
		"split_include": []string{"10.3.0.0/24"},
		"25":            []string{"example.com", "example.org"},
		"28675":         []string{"example.com example.org"},
	}}
	if diff := cmp.Diff(want, tree(m)); diff != "" {
		t.Errorf("load-pool message (-want +got):\n%s", diff)
	}
	if _, err := vici.PoolMessage(swan.Pool{Name: "p", Addrs: "10.0.0.0/24", Attributes: []swan.Attribute{{Key: "dns"}, {Key: "dns"}}}); err == nil {
		t.Error("A pool with an attribute given twice was accepted")
	}
}

func TestCredentialMessages(t *testing.T) {
	c := creds(t)
	certs := vici.IndexCerts([]swan.Cert{{Name: "ca", Type: "x509ca", PEM: c.caPEM}})
	for _, tc := range []struct {
		name string
		msg  func() (*govici.Message, error)
		want map[string]any
	}{
		{"ca cert", func() (*govici.Message, error) {
			return vici.CertMessage(swan.Cert{Name: "ca", Type: "x509ca", PEM: c.caPEM})
		},
			map[string]any{"type": "X509", "flag": "CA", "data": string(c.caPEM)}},
		{"leaf cert", func() (*govici.Message, error) { return vici.CertMessage(swan.Cert{Name: "gw", PEM: c.gwPEM}) },
			map[string]any{"type": "X509", "flag": "NONE", "data": string(c.gwPEM)}},
		{"key", func() (*govici.Message, error) {
			return vici.KeyMessage(swan.PrivateKey{Name: "gw", Type: "ECDSA", PEM: c.gwKey})
		},
			map[string]any{"type": "ecdsa", "data": string(c.gwKey)}},
		{"authority", func() (*govici.Message, error) {
			return vici.AuthorityMessage(swan.Authority{Name: "ca", CACert: "ca", OCSPURIs: []string{"http://ocsp.example.com"}}, certs)
		}, map[string]any{"ca": map[string]any{"cacert": string(c.caPEM), "ocsp_uris": []string{"http://ocsp.example.com"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.msg()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, tree(m)); diff != "" {
				t.Errorf("Message (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := vici.CertMessage(swan.Cert{Name: "x", Type: "pgp"}); err == nil {
		t.Error("Unknown certificate type accepted")
	}
}

func TestDigestSeesEveryValue(t *testing.T) {
	base := func() *govici.Message {
		m, err := vici.PoolMessage(pool("p", "10.0.0.0/24", "10.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	d := vici.Digest(base())
	if d != vici.Digest(base()) {
		t.Fatal("Digest of equal messages differs")
	}
	for name, m := range map[string]swan.Pool{
		"addrs":     pool("p", "10.0.1.0/24", "10.0.0.1"),
		"attribute": pool("p", "10.0.0.0/24", "10.0.0.2"),
		"name":      pool("q", "10.0.0.0/24", "10.0.0.1"),
		"no attrs":  pool("p", "10.0.0.0/24"),
	} {
		msg, err := vici.PoolMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		if vici.Digest(msg) == d {
			t.Errorf("Changing %s does not change the digest", name)
		}
	}
	// A list of two is not the string of both.
	a, b := govici.NewMessage(), govici.NewMessage()
	_ = a.Set("k", []string{"ab", "c"})
	_ = b.Set("k", []string{"a", "bc"})
	if vici.Digest(a) == vici.Digest(b) {
		t.Error("Digest does not separate list items")
	}
}

func TestKeyIDMatchesStrongSwan(t *testing.T) {
	// testdata/keyids.txt holds what strongSwan's pki --keyid prints for each
	// key: the id charon's load-key returns and get-keys lists.
	b, err := os.ReadFile("testdata/keyids.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		file, want, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		pemData, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := vici.KeyID(pemData)
		if err != nil {
			t.Errorf("KeyID(%s): %v", file, err)
			continue
		}
		if got != want {
			t.Errorf("KeyID(%s) = %s, want %s", file, got, want)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("Checked %d keys, want 4", n)
	}
	if _, err := vici.KeyID([]byte("not a key")); err == nil {
		t.Error("keyID of garbage succeeded")
	}
}
