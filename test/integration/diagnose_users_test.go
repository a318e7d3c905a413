package integration

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// TestUsersRefusalsAtRekeyPoolLivenessAndCertificate: an expired user, a
// PFS mismatch at the first CHILD_SA rekey, an ESP proposal mismatch, a
// full pool, a client that refuses the gateway's certificate, a client
// that vanishes (DPD) and a client certificate of a foreign CA are each a
// Warning Event on the object whose owner can fix it, naming both sides'
// values; with every user disabled, the agent reports that charon holds
// no connection.
func TestUsersRefusalsAtRekeyPoolLivenessAndCertificate(t *testing.T) {
	require.Root(t)
	var users []client.Object
	for _, n := range []string{"jimp", "bob", "carl", "exp"} {
		s, u := userObjects(n, n+"@example.com", "pw-"+n)
		if n == "exp" {
			u.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Hour)}
		}
		users = append(users, s, u)
	}
	r := newDiagRig(t, users...)
	// The agent's RADIUS server, not charon, holds the passwords.
	r.ag.waitServes(t, 3)

	t.Run("expired", func(t *testing.T) {
		r.load(t, nil, r.eapClient("exp", "exp@example.com", "pw-exp", nil))
		r.refused(t, "exp")
		r.end("exp")
		r.wantEvent(t, v1alpha1.ReasonExpired, "VPNUser", "exp", "exp@example.com", diagCl, "the VPNUser has expired", "extend expiresAt")
		r.userConnected(t, "exp", metav1.ConditionFalse, v1alpha1.ReasonExpired)
	})

	t.Run("pfs-at-rekey", func(t *testing.T) {
		// IKE_AUTH's CHILD_SA carries no key exchange, so the client's
		// unwanted PFS group shows only when the CHILD_SA is rekeyed.
		r.load(t, nil, r.eapClient("pfs", "jimp@example.com", "pw-jimp", func(c *charontest.EAPClient) { c.ESPProposals = "aes256gcm16-modp2048" }))
		r.connect(t, "pfs")
		if out, err := r.cl.Swanctl("--rekey", "--child", "pfs"); err != nil {
			t.Fatalf("Rekeying: %v\n%s", err, out)
		}
		r.wantEvent(t, v1alpha1.ReasonProposalMismatch, "VPNUser", "jimp", "rekey failed", "jimp@example.com",
			"PFS mismatch", "the peer offered ESP:AES_GCM_16_256/MODP_2048", "the gateway has ESP:AES_GCM_16_256/AES_GCM_16_128/CHACHA20_POLY1305/NO_EXT_SEQ",
			"set the same PFS (DH group) for ESP on both sides")
		r.end("pfs")
	})

	t.Run("esp-proposal", func(t *testing.T) {
		r.load(t, nil, r.eapClient("sha1", "bob@example.com", "pw-bob", func(c *charontest.EAPClient) { c.ESPProposals = "aes256-sha1" }))
		r.refused(t, "sha1")
		r.end("sha1")
		r.wantEvent(t, v1alpha1.ReasonProposalMismatch, "VPNUser", "bob", "CHILD_SA failed", "bob@example.com", "no match for integrity",
			"the peer offered ESP:AES_CBC_256/HMAC_SHA1_96/NO_EXT_SEQ", "the gateway has ESP:AES_GCM_16_256", "make the client's ESP proposal share integrity")
		r.userConnected(t, "bob", metav1.ConditionFalse, v1alpha1.ReasonProposalMismatch)
	})

	t.Run("pool-exhausted", func(t *testing.T) {
		r.load(t, nil,
			r.eapClient("jimp", "jimp@example.com", "pw-jimp", nil),
			r.eapClient("bob", "bob@example.com", "pw-bob", nil),
			r.eapClient("carl", "carl@example.com", "pw-carl", nil))
		r.connect(t, "jimp")
		r.connect(t, "bob")
		r.refused(t, "carl")
		r.wantEvent(t, v1alpha1.ReasonPoolExhausted, "VPNUser", "carl", "carl@example.com", diagCl,
			"no address is left", "the gateway has pool ", "10.3.200.1-10.3.200.2", "enlarge the MobilePool")
		r.userConnected(t, "carl", metav1.ConditionFalse, v1alpha1.ReasonPoolExhausted)
		r.end("jimp", "bob", "carl")
	})

	t.Run("gateway-certificate-refused", func(t *testing.T) {
		// The client accepts only another CA for the gateway.
		other := charontest.NewPKI(t, "Another CA")
		conf := strings.Replace(charontest.ClientConf(r.eapClient("picky", "bob@example.com", "pw-bob", nil)),
			"      auth = pubkey\n", "      auth = pubkey\n      cacerts = other.pem\n", 1)
		if out, err := r.cl.LoadAll(conf, map[string][]byte{"x509ca/other.pem": other.CertPEM}); err != nil {
			t.Fatalf("Loading the client: %v\n%s", err, out)
		}
		r.refused(t, "picky")
		r.end("picky")
		r.wantEvent(t, v1alpha1.ReasonCertificateInvalid, "VPNGateway", gatewayName, diagCl,
			"the peer refused this side's certificate", "vpn.example.com", "give the side that refused the certificate the CA that issued it")
	})

	t.Run("dead-peer", func(t *testing.T) {
		r.load(t, nil, r.eapClient("jimp", "jimp@example.com", "pw-jimp", nil))
		r.connect(t, "jimp")
		r.userConnected(t, "jimp", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		// The client vanishes without a DELETE, as a phone losing coverage.
		r.clNS.Run(t, "nft", "add table inet vanish; add chain inet vanish in { type filter hook input priority 0; policy drop; }")
		r.wantEvent(t, v1alpha1.ReasonPeerUnreachable, "VPNUser", "jimp", "liveness failed", "jimp@example.com", "dead peer", "check that the peer is up")
		r.userConnected(t, "jimp", metav1.ConditionFalse, v1alpha1.ReasonPeerUnreachable)
		r.clNS.Run(t, "nft", "delete table inet vanish")
		r.end("jimp")
	})

	t.Run("no-connections", func(t *testing.T) {
		// The expired user is not loaded either: charon holds nothing.
		r.agentConnections(t, 1)
		r.setDisabled(t, true, "jimp", "bob", "carl")
		r.agentConnections(t, 0)
		r.setDisabled(t, false, "jimp")
		r.agentConnections(t, 1)
	})

	t.Run("client-certificate-untrusted", func(t *testing.T) {
		r.toPublicKey(t, "laptop", "laptop.example.com")
		// The laptop's certificate is of a CA the gateway does not trust.
		leaf := charontest.NewPKI(t, "Foreign CA").Client(t, "laptop.example.com", "laptop.example.com")
		files := map[string][]byte{"x509ca/ca.pem": r.pki.CertPEM, "x509/laptop.pem": leaf.CertPEM, "private/laptop.key": leaf.KeyPEM}
		if out, err := r.cl.LoadAll(certClientConf("laptop", "laptop.example.com"), files); err != nil {
			t.Fatalf("Loading the client: %v\n%s", err, out)
		}
		r.refused(t, "laptop")
		r.end("laptop")
		r.wantEvent(t, v1alpha1.ReasonCertificateInvalid, "VPNUser", "laptop", "laptop.example.com", diagCl,
			"does not verify against the trusted CAs", "the gateway has trusted CA CN=Diagnose Users CA", "give the side that refused the certificate the CA that issued it")
		r.userConnected(t, "laptop", metav1.ConditionFalse, v1alpha1.ReasonCertificateInvalid)
	})
}
