package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// plutoSiteID is pluto's identity and certificate name in the certificate test.
const plutoSiteID = "site.example.net"

// plutoCertConn is pluto's side of a certificate tunnel: ECDSA signatures
// (RFC 7427) with the certificate named "site" in its NSS database, the
// gateway's certificate checked against the CA there.
const plutoCertConn = `	ikev2=insist
	authby=ecdsa
	left=` + rigSiteAddr + `
	leftid=@` + plutoSiteID + `
	leftcert=site
	leftsendcert=always
	leftsubnet=` + rigSiteLAN + `
	right=` + rigGWAddr + `
	rightid=@` + hostname + `
	rightca=%same
	rightsubnet=` + lanNet + `
	ike=aes_gcm256-sha2_256;dh31
	esp=aes_gcm256
	leftupdown=
	auto=add
`

// TestLibreswanCertificates: the rendered certificate tunnel against pluto,
// the gateway initiating first and pluto after it. Each side authenticates
// the other's certificate from the same test CA.
func TestLibreswanCertificates(t *testing.T) {
	require.Commands(t, "openssl")
	var site charontest.Leaf
	r := newTunnelRig(t, func(r *tunnelRig, s *v1alpha1.TunnelSpec) {
		site = r.pki.Server(t, plutoSiteID, plutoSiteID)
		s.Auth = v1alpha1.TunnelAuth{Certificate: &v1alpha1.CertificateAuth{PeerCARef: v1alpha1.SecretKeyReference{Name: rigCASecret, Key: "ca.crt"}}}
		s.Remote.Identity = plutoSiteID
	})
	p := startPluto(t, r.siteNS, plutoOptions{Conn: plutoCertConn, CACert: r.pki.CertPEM, PKCS12: pkcs12(t, site)})

	sa := r.ikeUp(t, 0, recoveryBound, "the certificate IKE_SA with pluto established")
	if !sa.Initiator || !wantIKEProposal(sa) || sa.RemoteID != plutoSiteID {
		t.Errorf("IKE_SA with pluto: initiator %v, proposal %+v, remote id %q; want the gateway initiating with AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519 to %s",
			sa.Initiator, sa.Proposal, sa.RemoteID, plutoSiteID)
	}
	p.WaitLog(t, plutoResponderIKE, recoveryBound)
	p.WaitLog(t, "using peer certificate '@"+hostname+"' issued by CA 'CN=Tunnel Test CA'", recoveryBound)
	p.WaitLog(t, plutoChildChosen, recoveryBound)
	r.gw.WaitLog(t, "authentication of '"+plutoSiteID+"' with ECDSA_WITH_SHA256_DER successful", recoveryBound)

	// A fresh pluto initiates: on the IKE_SA it has, pluto would ask for a
	// CHILD_SA with PFS (its default), which a child without esp.pfsGroup
	// refuses (NO_PROPOSAL_CHOSEN).
	p.Kill(t)
	p.Start(t)
	p.Initiate(t)
	p.WaitLog(t, plutoInitiatorIKE, recoveryBound)
	from := r.ikeUp(t, sa.UniqueID, recoveryBound, "the certificate IKE_SA pluto initiated")
	if from.Initiator || from.RemoteID != plutoSiteID {
		t.Errorf("IKE_SA from pluto: initiator %v, remote id %q", from.Initiator, from.RemoteID)
	}
	var child bool
	for _, ch := range from.Children {
		child = child || (ch.Name == "lan" && strings.Join(ch.LocalTS, ",") == lanNet && strings.Join(ch.RemoteTS, ",") == rigSiteLAN)
	}
	if !child {
		t.Errorf("The gateway has no CHILD_SA %s === %s with pluto: %s", lanNet, rigSiteLAN, describeSAs(r.tunnelSAs(t)))
	}
}

// pkcs12 bundles leaf and its key for pk12util, named "site", with an
// empty password.
func pkcs12(t *testing.T, leaf charontest.Leaf) []byte {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"cert.pem": leaf.CertPEM, "key.pem": leaf.KeyPEM}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "site.p12")
	cmd := exec.Command("openssl", "pkcs12", "-export", "-name", "site", "-in", "cert.pem", "-inkey", "key.pem",
		"-passout", "pass:", "-out", out)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
