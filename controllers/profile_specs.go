package controllers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
)

// A user's profile Secret holds one key per format, the CA and, for a user
// whose certificate ikegate issues, that certificate as PKCS#12 with its
// password. It never holds the user's password: the manager reads passwords
// only to hash them, and reading a profile must not reveal one. The PKCS#12
// is a credential, though: reading the Secret is as good as holding the
// user's certificate, which is why the agent's Role does not name it.
const (
	profileSecretSuffix = "-vpn-profile"
	clientCertSuffix    = "-vpn-client"
	clientSecretSuffix  = "-vpn-client-tls"

	// labelProfileOf marks a profile Secret with its gateway's name: the
	// manager's cache drops the data of those Secrets (the hash annotation
	// says all it needs), and their events wake the members controller only.
	labelProfileOf = "ikegate.io/profile-of"
	// labelClientCertOf marks a client certificate's Secret with its gateway.
	labelClientCertOf = "ikegate.io/client-certificate-of"
	// annotationProfileHash is profileHash of what the Secret was built from.
	annotationProfileHash = "ikegate.io/profile-hash"
	// annotationUnavailable names the formats the Secret lacks and why.
	annotationUnavailable = "ikegate.io/profile-unavailable"
)

// profileSecretName is the name of the user's profile Secret.
func profileSecretName(user string) string { return userObjectName(user, profileSecretSuffix) }

func clientCertName(user string) string       { return userObjectName(user, clientCertSuffix) }
func clientCertSecretName(user string) string { return userObjectName(user, clientSecretSuffix) }

// userObjectName appends suffix to a user's name; a name that would pass
// the 253 characters of an object name is cut and made unique by a hash.
func userObjectName(user, suffix string) string {
	const maxName = 253
	if len(user)+len(suffix) <= maxName {
		return user + suffix
	}
	sum := sha256.Sum256([]byte(user))
	tag := "-" + hex.EncodeToString(sum[:4])
	head := strings.TrimRight(user[:maxName-len(suffix)-len(tag)], ".-")
	return head + tag + suffix
}

// userOwner makes the user the controller of what is made for it, so the
// garbage collector removes it with the user.
func userOwner(u *v1alpha1.VPNUser) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(),
		Kind:       "VPNUser",
		Name:       u.Name,
		UID:        u.UID,
		Controller: ptr.To(true),
	}
}

// issuesCertificate says whether the user asked ikegate for a certificate.
func issuesCertificate(u *v1alpha1.VPNUser) bool {
	return u.Spec.Certificate != nil && u.Spec.Certificate.Issue
}

// clientCertificate is the cert-manager Certificate of a user whose
// certificate ikegate issues, or the reason it cannot be issued.
//
// It is signed by the gateway's own CA Issuer, and only when that CA is the
// gateway's clientAuth.clientCA: a certificate the gateway does not trust
// would be useless, and ikegate holds no Issuer for any other CA. The key
// is RSA 2048, the key type every client family imports from PKCS#12.
func clientCertificate(gw *v1alpha1.VPNGateway, u *v1alpha1.VPNUser) (*cmv1.Certificate, string) {
	own := namesFor(gw.Name).CA
	if ca := gw.Spec.ClientAuth.ClientCA; ca == nil || ca.Name != own {
		return nil, fmt.Sprintf("certificate.issue needs the gateway's clientAuth.clientCA to be its own CA (Secret %s, key ca.crt), the only CA ikegate issues from", own)
	}
	spec := cmv1.CertificateSpec{
		SecretName: clientCertSecretName(u.Name),
		Duration:   u.Spec.Certificate.Duration,
		PrivateKey: &cmv1.CertificatePrivateKey{Algorithm: cmv1.RSAKeyAlgorithm, Size: 2048, RotationPolicy: cmv1.RotationPolicyAlways},
		Usages:     []cmv1.KeyUsage{cmv1.UsageClientAuth, cmv1.UsageDigitalSignature, cmv1.UsageKeyEncipherment},
		IssuerRef:  ownIssuer(own),
		SecretTemplate: &cmv1.CertificateSecretTemplate{Labels: map[string]string{
			"app.kubernetes.io/managed-by": "ikegate",
			labelClientCertOf:              gw.Name,
		}},
	}
	id := string(u.Spec.Identity)
	// charon finds the identity a client sends among the certificate's
	// subject and SANs; the SAN type must be the identity's type.
	switch kind, value := identitySAN(id); kind {
	case "email":
		spec.EmailAddresses = []string{value}
	case "ip":
		spec.IPAddresses = []string{value}
	case "dns":
		spec.DNSNames = []string{value}
	default:
		return nil, fmt.Sprintf("certificate.issue supports e-mail, FQDN and IP address identities, not %q", id)
	}
	// X.509 limits a common name to 64 characters; the SAN is what counts.
	if len(id) <= 64 {
		spec.CommonName = id
	}
	return &cmv1.Certificate{
		TypeMeta: certificateType,
		ObjectMeta: metav1.ObjectMeta{
			Name:            clientCertName(u.Name),
			Namespace:       u.Namespace,
			Labels:          map[string]string{"app.kubernetes.io/managed-by": "ikegate", v1alpha1.LabelGateway: gw.Name, labelClientCertOf: gw.Name},
			OwnerReferences: []metav1.OwnerReference{userOwner(u)},
		},
		Spec: spec,
	}, ""
}

// identitySAN is the SAN type and value that carry an identity, as charon
// reads identities: an explicit prefix, else an address, else an e-mail
// address when it has an @, else a DNS name. Distinguished names and key
// IDs have no SAN ("" kind).
func identitySAN(id string) (kind, value string) {
	lower := strings.ToLower(id)
	for _, p := range []struct{ prefix, kind string }{
		{"rfc822:", "email"}, {"email:", "email"}, {"userfqdn:", "email"},
		{"fqdn:", "dns"}, {"dns:", "dns"},
	} {
		if strings.HasPrefix(lower, p.prefix) {
			return p.kind, id[len(p.prefix):]
		}
	}
	switch {
	case strings.ContainsAny(id, "=#{}"):
		return "", ""
	case strings.HasPrefix(id, "@"):
		return "dns", id[1:]
	case strings.Contains(id, "@"):
		return "email", id
	}
	if a, err := netip.ParseAddr(id); err == nil && a.Zone() == "" {
		return "ip", a.String()
	}
	if strings.Contains(id, ":") {
		return "", ""
	}
	return "dns", id
}

// clientPKCS12 bundles an issued certificate and its key as PKCS#12 under a
// new random password, with the legacy 3DES/SHA-1 encryption: Apple's
// profile installer and older Windows refuse the modern AES/PBKDF2 form.
func clientPKCS12(certPEM, keyPEM []byte) (data []byte, password string, err error) {
	chain, err := pki.DecodeX509CertificateChainBytes(certPEM)
	if err != nil {
		return nil, "", fmt.Errorf("client certificate: %w", err)
	}
	key, err := pki.DecodePrivateKeyBytes(keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("client key: %w", err)
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	password = base64.RawURLEncoding.EncodeToString(raw)
	data, err = pkcs12.Legacy.Encode(key, chain[0], chain[1:], password)
	if err != nil {
		return nil, "", fmt.Errorf("encoding PKCS#12: %w", err)
	}
	return data, password, nil
}

// profileHash identifies what a profile Secret is built from: the profile
// input (which holds no secret: FromBuild never fills a password), the
// client certificate and the manager's build, since a new manager may
// build other profiles from the same input. The PKCS#12 is left out: it is
// made anew, with a new password, only when this hash changes.
func profileHash(in profile.Input, clientCertPEM []byte) string {
	in.PKCS12, in.PKCS12Password = nil, ""
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(struct {
		Manager string
		Input   profile.Input
		Cert    []byte
	}{managerBuild(), in, clientCertPEM})
	return hex.EncodeToString(h.Sum(nil))
}

// managerBuild is read once: parsing the build info for every user's
// profile was among the largest allocations of a pass over the profiles.
var managerBuild = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	out := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			out += " " + s.Value
		}
	}
	return out
})

// profileContent is the profile Secret's data: every format the preflight
// lets through, the CA, and the PKCS#12 when in carries one; unavailable
// says which formats are missing and why, in format order.
func profileContent(in profile.Input) (data map[string][]byte, unavailable string) {
	data = map[string][]byte{v1alpha1.ProfileKeyCA: in.CAPEM}
	var refused []string
	for _, f := range profile.Formats {
		b, err := profile.Build(f, in)
		if err != nil {
			refused = append(refused, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		key, _ := v1alpha1.ProfileSecretKey(string(f))
		data[key] = b
	}
	if len(in.PKCS12) > 0 {
		data[v1alpha1.ProfileKeyPKCS12] = in.PKCS12
		data[v1alpha1.ProfileKeyPKCS12Password] = []byte(in.PKCS12Password)
	}
	return data, strings.Join(refused, "; ")
}

// profileSecret is the user's profile Secret, owned by the user.
func profileSecret(gw string, u *v1alpha1.VPNUser, data map[string][]byte, hash, unavailable string) *corev1.Secret {
	ann := map[string]string{annotationProfileHash: hash}
	if unavailable != "" {
		ann[annotationUnavailable] = unavailable
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      profileSecretName(u.Name),
			Namespace: u.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/managed-by": "ikegate",
				labelProfileOf:                 gw,
			},
			Annotations:     ann,
			OwnerReferences: []metav1.OwnerReference{userOwner(u)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// profileCondition is ProfileReady from what the last delivery found: the
// reason the profile could not be built at all, or the formats it lacks.
// Neither message holds a time or anything random, so an unchanged verdict
// writes nothing.
func profileCondition(buildErr error, unavailable string) metav1.Condition {
	const t = v1alpha1.ConditionProfileReady
	switch {
	case buildErr != nil:
		return condFalse(t, v1alpha1.ReasonProfileUnavailable, buildErr.Error())
	case unavailable != "":
		return condFalse(t, v1alpha1.ReasonProfileUnavailable, "some formats cannot work and were left out: "+unavailable)
	}
	return condTrue(t, v1alpha1.ReasonReady, "a profile of every format is in the Secret")
}

// clientCertCondition is CertificateReady of a user whose certificate
// ikegate issues.
// certPEM is the issued Secret's tls.crt, nil while there is none.
func clientCertCondition(cannot string, certPEM []byte, now time.Time) metav1.Condition {
	const t = v1alpha1.ConditionCertificateReady
	if cannot != "" {
		return condFalse(t, v1alpha1.ReasonCannotIssue, cannot)
	}
	if len(certPEM) == 0 {
		return condFalse(t, v1alpha1.ReasonCertificatePending, "waiting for cert-manager to issue the client certificate")
	}
	chain, err := pki.DecodeX509CertificateChainBytes(certPEM)
	if err != nil {
		return condFalse(t, v1alpha1.ReasonCertificateFailed, "the issued certificate does not parse: "+err.Error())
	}
	if !now.Before(chain[0].NotAfter) {
		return condFalse(t, v1alpha1.ReasonCertificateExpiring, "the client certificate has expired and was not renewed")
	}
	return condTrue(t, v1alpha1.ReasonReady, "the client certificate is issued")
}
