package profile_test

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/google/uuid"

	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/proposals"
)

func TestAndroidProfileIsWhatTheAppImports(t *testing.T) {
	in := input(t, seed(t), profile.Options{})
	out, err := profile.Android(in)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		UUID   string `json:"uuid"`
		Name   string `json:"name"`
		Type   string `json:"type"`
		Remote struct {
			Addr, ID, Cert string
		} `json:"remote"`
		Local struct {
			EAPID string `json:"eap_id"`
		} `json:"local"`
		IKE   string `json:"ike-proposal"`
		ESP   string `json:"esp-proposal"`
		Split struct {
			Subnets []string `json:"subnets"`
		} `json:"split-tunneling"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("Not JSON: %v", err)
	}
	if _, err := uuid.Parse(p.UUID); err != nil || p.Name == "" {
		t.Errorf("uuid %q, name %q", p.UUID, p.Name)
	}
	if p.Type != "ikev2-eap" || p.Remote.Addr != "vpn.example.com" || p.Remote.ID != "vpn.example.com" || p.Local.EAPID != "jimp@example.com" {
		t.Errorf("Profile: %+v", p)
	}
	der, err := base64.StdEncoding.DecodeString(p.Remote.Cert)
	blk, _ := pem.Decode(in.CAPEM)
	if err != nil || string(der) != string(blk.Bytes) {
		t.Error("remote.cert is not the CA in base64 DER")
	}
	if _, ok := proposals.Negotiate(in.IKEProposals, []string{p.IKE}); !ok {
		t.Errorf("ike-proposal %s is refused", p.IKE)
	}
	if _, ok := proposals.NegotiateESP(in.ESPProposals, []string{p.ESP}); !ok {
		t.Errorf("esp-proposal %s is refused", p.ESP)
	}
	if len(p.Split.Subnets) != 1 || p.Split.Subnets[0] != "10.3.0.0/24" {
		t.Errorf("split-tunneling.subnets = %v", p.Split.Subnets)
	}
	again, _ := profile.Android(input(t, seed(t, ikePreset("Compatible")), profile.Options{}))
	var q struct{ UUID string }
	_ = json.Unmarshal(again, &q)
	if q.UUID != p.UUID {
		t.Error("The uuid changed with the gateway's proposals; reimporting would duplicate the profile")
	}
}
