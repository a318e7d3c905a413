package integration

import (
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
)

// TestTunnelIKEv1MainMode: an IKEv1 Tunnel (preset Compatible: IKEv1 has no
// AEAD for IKE) against a strongSwan IKEv1 peer
// in Main Mode, with a pre-shared key and with certificates; traffic passes.
func TestTunnelIKEv1MainMode(t *testing.T) {
	t.Run("PSK", func(t *testing.T) {
		r := newTunnelRig(t, func(_ *tunnelRig, s *v1alpha1.TunnelSpec) {
			s.IKEVersion = 1
			s.IKE.Preset = v1alpha1.PresetCompatible
		})
		site := charontest.Start(t, r.siteNS, charontest.Options{Name: "site", Userspace: true})
		loadSiteConf(t, site, strongSwanSiteConf(1, ""))
		sa := r.waitUp(t, 0, recoveryBound, "the IKEv1 tunnel up")
		if sa.Version != 1 || !sa.Initiator {
			t.Errorf("IKE_SA version %d, initiator %v; want 1, the gateway initiating", sa.Version, sa.Initiator)
		}
		r.pingSite(t)
		r.gw.WaitLog(t, "initiating Main Mode IKE_SA", recoveryBound)
		if strings.Contains(r.gw.Log(), "Aggressive Mode") {
			t.Errorf("The gateway used Aggressive Mode")
		}
	})
	t.Run("Certificates", func(t *testing.T) {
		var site charontest.Leaf
		r := newTunnelRig(t, func(r *tunnelRig, s *v1alpha1.TunnelSpec) {
			site = r.pki.Server(t, plutoSiteID, plutoSiteID)
			s.IKEVersion = 1
			s.IKE.Preset = v1alpha1.PresetCompatible
			s.Auth = v1alpha1.TunnelAuth{Certificate: &v1alpha1.CertificateAuth{PeerCARef: v1alpha1.SecretKeyReference{Name: rigCASecret, Key: "ca.crt"}}}
			s.Remote.Identity = plutoSiteID
		})
		peer := charontest.Start(t, r.siteNS, charontest.Options{Name: "site", Userspace: true})
		conf := `connections {
  hq {
    version = 1
    local_addrs = ` + rigSiteAddr + `
    remote_addrs = ` + rigGWAddr + `
    proposals = aes256-sha256-x25519
    local {
      auth = pubkey
      certs = site.pem
      id = ` + plutoSiteID + `
    }
    remote {
      auth = pubkey
      id = ` + hostname + `
    }
    children {
      lan {
        local_ts = ` + rigSiteLAN + `
        remote_ts = ` + lanNet + `
        esp_proposals = aes256gcm16
      }
    }
  }
}
`
		files := map[string][]byte{"x509/site.pem": site.CertPEM, "private/site.key": site.KeyPEM, "x509ca/ca.pem": r.pki.CertPEM}
		if out, err := peer.LoadAll(conf, files); err != nil {
			t.Fatalf("Loading the site: %v\n%s", err, out)
		}
		sa := r.waitUp(t, 0, recoveryBound, "the IKEv1 certificate tunnel up")
		if sa.Version != 1 || sa.RemoteID != plutoSiteID {
			t.Errorf("IKE_SA version %d, remote id %q; want 1 and %s", sa.Version, sa.RemoteID, plutoSiteID)
		}
		r.pingSite(t)
	})
}

// TestTunnelRefusesAggressiveMode: a peer that initiates IKEv1 Aggressive
// Mode with the tunnel's pre-shared key is refused (Aggressive Mode sends
// a hash of the key that an eavesdropper can attack offline, so charon
// answers it only when told it does not care about security, which ikegate
// never tells it).
func TestTunnelRefusesAggressiveMode(t *testing.T) {
	r := newTunnelRig(t, func(_ *tunnelRig, s *v1alpha1.TunnelSpec) {
		s.IKEVersion = 1
		s.IKE.Preset = v1alpha1.PresetCompatible
		s.Children[0].StartAction = "None"
	})
	site := charontest.Start(t, r.siteNS, charontest.Options{Name: "site", Userspace: true})
	loadSiteConf(t, site, strongSwanSiteConf(1, "aggressive = yes"))
	if out, err := site.Swanctl("--initiate", "--child", "lan", "--timeout", "15"); err == nil {
		t.Fatalf("The gateway accepted Aggressive Mode:\n%s", out)
	}
	r.gw.WaitLog(t, "Aggressive Mode PSK disabled for security reasons", recoveryBound)
	if ok, _, detail := r.up(t, 0); ok {
		t.Errorf("The tunnel is up after an Aggressive Mode attempt: %s", detail)
	}
}
