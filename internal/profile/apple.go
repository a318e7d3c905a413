package profile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"howett.net/plist"
)

// apple is what IKESecurityAssociationParameters and
// ChildSecurityAssociationParameters of com.apple.vpn.managed take
// (Apple's device-management schema); DES, 3DES, SHA1-96/160 and groups
// 1, 2 and 5 exist but are insecure, and Apple dropped them in its 26
// releases.
var apple = dialect{
	name: "Apple's IKEv2 client",
	ikeEnc: []term{
		{"aes256gcm16", "AES-256-GCM"}, {"aes128gcm16", "AES-128-GCM"}, {"chacha20poly1305", "ChaCha20Poly1305"},
		{"aes256", "AES-256"}, {"aes128", "AES-128"},
	},
	hash: []term{{"sha256", "SHA2-256"}, {"sha384", "SHA2-384"}, {"sha512", "SHA2-512"}},
	ikeDH: []term{
		{"x25519", "31"}, {"x448", "32"}, {"ecp256", "19"}, {"ecp384", "20"}, {"ecp521", "21"},
		{"modp2048", "14"}, {"modp3072", "15"}, {"modp4096", "16"}, {"modp6144", "17"}, {"modp8192", "18"},
	},
	espEnc: []term{
		{"aes256gcm16", "AES-256-GCM"}, {"aes128gcm16", "AES-128-GCM"}, {"chacha20poly1305", "ChaCha20Poly1305"},
		{"aes256", "AES-256"}, {"aes128", "AES-128"},
	},
	espInteg: []term{{"", ""}, {"sha256", "SHA2-256"}, {"sha384", "SHA2-384"}, {"sha512", "SHA2-512"}},
	// The CHILD_SA's group is the one IKESecurityAssociationParameters names
	// unless ChildSecurityAssociationParameters names another.
	pfs: []term{
		{"x25519", "31"}, {"x448", "32"}, {"ecp256", "19"}, {"ecp384", "20"}, {"ecp521", "21"},
		{"modp2048", "14"}, {"modp3072", "15"}, {"modp4096", "16"}, {"modp6144", "17"}, {"modp8192", "18"},
	},
	// EnablePFS is set exactly when the pool requires a group: macOS sends
	// none when rekeying, so a pool that merely allows PFS works without.
	pfsGroups: func(d dialect, p PFS) []*term {
		if p == PFSRequired {
			return d.groups(false)
		}
		return []*term{nil}
	},
}

// mobileconfig is the top level of a configuration profile.
type mobileconfig struct {
	PayloadContent           []any  `plist:"PayloadContent"`
	PayloadDescription       string `plist:"PayloadDescription"`
	PayloadDisplayName       string `plist:"PayloadDisplayName"`
	PayloadIdentifier        string `plist:"PayloadIdentifier"`
	PayloadOrganization      string `plist:"PayloadOrganization"`
	PayloadRemovalDisallowed bool   `plist:"PayloadRemovalDisallowed"`
	PayloadType              string `plist:"PayloadType"`
	PayloadUUID              string `plist:"PayloadUUID"`
	PayloadVersion           int    `plist:"PayloadVersion"`
}

// The keys every payload has are spelt out in each payload type: the plist
// encoder does not flatten embedded structs.
type certPayload struct {
	PayloadDisplayName         string `plist:"PayloadDisplayName"`
	PayloadIdentifier          string `plist:"PayloadIdentifier"`
	PayloadType                string `plist:"PayloadType"`
	PayloadUUID                string `plist:"PayloadUUID"`
	PayloadVersion             int    `plist:"PayloadVersion"`
	PayloadCertificateFileName string `plist:"PayloadCertificateFileName"`
	PayloadContent             []byte `plist:"PayloadContent"`
	Password                   string `plist:"Password,omitempty"`
}

type vpnPayload struct {
	PayloadDisplayName string      `plist:"PayloadDisplayName"`
	PayloadIdentifier  string      `plist:"PayloadIdentifier"`
	PayloadType        string      `plist:"PayloadType"`
	PayloadUUID        string      `plist:"PayloadUUID"`
	PayloadVersion     int         `plist:"PayloadVersion"`
	UserDefinedName    string      `plist:"UserDefinedName"`
	VPNType            string      `plist:"VPNType"`
	IKEv2              ikev2Config `plist:"IKEv2"`
}

type ikev2Config struct {
	RemoteAddress                     string     `plist:"RemoteAddress"`
	RemoteIdentifier                  string     `plist:"RemoteIdentifier"`
	LocalIdentifier                   string     `plist:"LocalIdentifier"`
	AuthenticationMethod              string     `plist:"AuthenticationMethod"`
	ExtendedAuthEnabled               int        `plist:"ExtendedAuthEnabled"`
	AuthName                          string     `plist:"AuthName,omitempty"`
	AuthPassword                      string     `plist:"AuthPassword,omitempty"`
	PayloadCertificateUUID            string     `plist:"PayloadCertificateUUID,omitempty"`
	ServerCertificateIssuerCommonName string     `plist:"ServerCertificateIssuerCommonName,omitempty"`
	IKESecurityAssociationParameters  saParams   `plist:"IKESecurityAssociationParameters"`
	ChildSecurityAssociationParams    saParams   `plist:"ChildSecurityAssociationParameters"`
	EnablePFS                         int        `plist:"EnablePFS"`
	DisableMOBIKE                     int        `plist:"DisableMOBIKE"`
	DisableRedirect                   int        `plist:"DisableRedirect"`
	DeadPeerDetectionRate             string     `plist:"DeadPeerDetectionRate"`
	EnableCertificateRevocationCheck  int        `plist:"EnableCertificateRevocationCheck"`
	UseConfigurationAttributeInternal int        `plist:"UseConfigurationAttributeInternalIPSubnet"`
	OnDemandEnabled                   int        `plist:"OnDemandEnabled,omitempty"`
	OnDemandRules                     []onDemand `plist:"OnDemandRules,omitempty"`
}

type saParams struct {
	EncryptionAlgorithm string `plist:"EncryptionAlgorithm"`
	IntegrityAlgorithm  string `plist:"IntegrityAlgorithm,omitempty"`
	DiffieHellmanGroup  int    `plist:"DiffieHellmanGroup,omitempty"`
	LifeTimeInMinutes   int    `plist:"LifeTimeInMinutes"`
}

type onDemand struct {
	Action string `plist:"Action"`
}

// Apple builds the .mobileconfig: the gateway's CA as a root payload, the
// user's PKCS#12 if given, and the VPN payload. Identifiers and UUIDs are
// derived from gateway and user, so installing the profile again replaces it.
func Apple(in Input) ([]byte, error) {
	if err := Check(in, FormatApple); err != nil {
		return nil, err
	}
	c, err := apple.choose(in)
	if err != nil {
		return nil, err
	}
	id := "io.ikegate." + reverseDNS(in.Namespace) + "." + reverseDNS(in.Gateway) + "." + reverseDNS(in.User)
	ca, caCN := firstCertDER(in.CAPEM)
	root := certPayload{
		PayloadDisplayName:         "ikegate CA of " + in.Gateway,
		PayloadIdentifier:          id + ".ca",
		PayloadType:                "com.apple.security.root",
		PayloadUUID:                stableUUID(in, "ca"),
		PayloadVersion:             1,
		PayloadCertificateFileName: in.Gateway + "-ca.cer",
		PayloadContent:             ca,
	}
	content := []any{root}
	vpn := vpnPayload{
		PayloadDisplayName: "VPN " + in.Name(),
		PayloadIdentifier:  id + ".vpn",
		PayloadType:        "com.apple.vpn.managed",
		PayloadUUID:        stableUUID(in, "vpn"),
		PayloadVersion:     1,
		UserDefinedName:    in.Name(),
		VPNType:            "IKEv2",
		IKEv2: ikev2Config{
			RemoteAddress:                     in.Dial,
			RemoteIdentifier:                  in.RemoteID,
			LocalIdentifier:                   in.Identity,
			ServerCertificateIssuerCommonName: caCN,
			IKESecurityAssociationParameters:  appleIKE(c.ike, in.IKELifetime),
			ChildSecurityAssociationParams:    appleESP(c.esp, in.ESPLifetime),
			DisableMOBIKE:                     boolInt(!in.MOBIKE),
			DeadPeerDetectionRate:             dpdRate(in.DPDDelay),
		},
	}
	if c.esp.pfs != nil {
		vpn.IKEv2.EnablePFS = 1
	}
	switch in.Auth {
	case AuthEAP:
		vpn.IKEv2.AuthenticationMethod = "None"
		vpn.IKEv2.ExtendedAuthEnabled = 1
		vpn.IKEv2.AuthName = in.Identity
		vpn.IKEv2.AuthPassword = in.Password
	case AuthEAPTLS, AuthCertificate:
		vpn.IKEv2.AuthenticationMethod = "Certificate"
		vpn.IKEv2.ExtendedAuthEnabled = boolInt(in.Auth == AuthEAPTLS)
		if len(in.PKCS12) > 0 {
			p12 := certPayload{
				PayloadDisplayName:         in.Identity,
				PayloadIdentifier:          id + ".identity",
				PayloadType:                "com.apple.security.pkcs12",
				PayloadUUID:                stableUUID(in, "identity"),
				PayloadVersion:             1,
				PayloadCertificateFileName: in.User + ".p12",
				PayloadContent:             in.PKCS12,
				Password:                   in.PKCS12Password,
			}
			content = append(content, p12)
			vpn.IKEv2.PayloadCertificateUUID = p12.PayloadUUID
		}
	}
	if in.OnDemand {
		vpn.IKEv2.OnDemandEnabled = 1
		vpn.IKEv2.OnDemandRules = []onDemand{{Action: "Connect"}}
	}
	content = append(content, vpn)
	prof := mobileconfig{
		PayloadContent:      content,
		PayloadDescription:  fmt.Sprintf("IKEv2 VPN to %s for %s, from ikegate", in.Dial, in.Identity),
		PayloadDisplayName:  in.Name(),
		PayloadIdentifier:   id,
		PayloadOrganization: "ikegate " + in.Namespace + "/" + in.Gateway,
		PayloadType:         "Configuration",
		PayloadUUID:         stableUUID(in, "profile"),
		PayloadVersion:      1,
	}
	return plist.MarshalIndent(prof, plist.XMLFormat, "\t")
}

// appleIKE: with an AEAD cipher Apple uses the integrity setting as PRF.
func appleIKE(o ikeOffer, life time.Duration) saParams {
	return saParams{
		EncryptionAlgorithm: o.enc.value,
		IntegrityAlgorithm:  o.hash.value,
		DiffieHellmanGroup:  atoi(o.dh.value),
		LifeTimeInMinutes:   minutes(life),
	}
}

func appleESP(o espOffer, life time.Duration) saParams {
	p := saParams{EncryptionAlgorithm: o.enc.value, IntegrityAlgorithm: o.integ.value, LifeTimeInMinutes: minutes(life)}
	if o.pfs != nil {
		p.DiffieHellmanGroup = atoi(o.pfs.value)
	}
	return p
}

// minutes is Apple's LifeTimeInMinutes, which must lie in 10-1440.
func minutes(d time.Duration) int {
	return min(1440, max(10, int(d/time.Minute)))
}

// dpdRate maps the gateway's DPD delay to Apple's keepalive rates (High
// every minute, Medium every 10, Low every 30).
func dpdRate(d time.Duration) string {
	switch {
	case d <= 0:
		return "None"
	case d <= time.Minute:
		return "High"
	case d <= 10*time.Minute:
		return "Medium"
	default:
		return "Low"
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

// reverseDNS makes a Kubernetes name a label of a payload identifier.
func reverseDNS(s string) string { return strings.ReplaceAll(s, ".", "-") }

// uuidSpace is ikegate's namespace for name-based (version 5) UUIDs.
var uuidSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://ikegate.io/profile"))

// stableUUID names one part of one user's profile; the same inputs give
// the same UUID, so a profile built again replaces the installed one.
func stableUUID(in Input, part string) string {
	return strings.ToUpper(uuid.NewSHA1(uuidSpace, []byte(in.Namespace+"/"+in.Gateway+"/"+in.User+"/"+part)).String())
}

// firstCertDER returns the first certificate of a PEM bundle as DER, with
// its subject's common name.
func firstCertDER(data []byte) ([]byte, string) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, ""
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cn := ""
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			cn = c.Subject.CommonName
		}
		return b.Bytes, cn
	}
}
