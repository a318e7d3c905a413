package controllers

import (
	"fmt"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// issuerRef is the issuer of the server certificate: the spec's, or the
// gateway's own CA Issuer.
func issuerRef(gw *v1alpha1.VPNGateway) cmmeta.IssuerReference {
	if r := gw.Spec.Certificate.IssuerRef; r != nil {
		return cmmeta.IssuerReference{Name: r.Name, Kind: r.EffectiveKind(), Group: r.EffectiveGroup()}
	}
	return ownIssuer(namesFor(gw.Name).CA)
}

// ownIssuer refers to an Issuer the manager made in the gateway's namespace.
func ownIssuer(name string) cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Name: name, Kind: cmv1.IssuerKind, Group: v1alpha1.CertManagerGroup}
}

// caBootstrap is the per-gateway CA used when the spec names no issuer:
// a self-signed Issuer signs a CA Certificate whose Secret backs a CA Issuer.
func caBootstrap(gw *v1alpha1.VPNGateway) (selfSigned *cmv1.Issuer, ca *cmv1.Certificate, caIssuer *cmv1.Issuer) {
	n := namesFor(gw.Name)
	selfSigned = issuer(gw, n.SelfSignedIssuer, cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}})
	ca = &cmv1.Certificate{
		TypeMeta:   certificateType,
		ObjectMeta: objectMeta(gw, n.CA),
		Spec: cmv1.CertificateSpec{
			IsCA:       true,
			CommonName: fmt.Sprintf("%s VPN CA", gw.Spec.Hostnames[0]),
			SecretName: n.CA,
			// A CA outlives many server certificates; clients install it once.
			Duration:    &metav1.Duration{Duration: 10 * 365 * 24 * time.Hour},
			RenewBefore: &metav1.Duration{Duration: 365 * 24 * time.Hour},
			PrivateKey: &cmv1.CertificatePrivateKey{
				Algorithm:      cmv1.ECDSAKeyAlgorithm,
				Size:           384,
				RotationPolicy: cmv1.RotationPolicyNever,
			},
			Usages:         []cmv1.KeyUsage{cmv1.UsageCertSign, cmv1.UsageCRLSign, cmv1.UsageDigitalSignature},
			IssuerRef:      ownIssuer(n.SelfSignedIssuer),
			SecretTemplate: &cmv1.CertificateSecretTemplate{Labels: commonLabels(gw.Name)},
		},
	}
	caIssuer = issuer(gw, n.CA, cmv1.IssuerConfig{CA: &cmv1.CAIssuer{SecretName: n.CA}})
	return selfSigned, ca, caIssuer
}

var certificateType = metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.CertificateKind}

func issuer(gw *v1alpha1.VPNGateway, name string, cfg cmv1.IssuerConfig) *cmv1.Issuer {
	return &cmv1.Issuer{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.IssuerKind},
		ObjectMeta: objectMeta(gw, name),
		Spec:       cmv1.IssuerSpec{IssuerConfig: cfg},
	}
}

// serverCertificate is the gateway's IKE certificate: CN and first DNS SAN
// hostnames[0] (the identity clients are configured with), every hostname
// and address as SANs, serverAuth as Windows and macOS clients demand.
func serverCertificate(gw *v1alpha1.VPNGateway) *cmv1.Certificate {
	n := namesFor(gw.Name)
	spec := gw.Spec.Certificate
	dns := make([]string, len(gw.Spec.Hostnames))
	for i, h := range gw.Spec.Hostnames {
		dns[i] = string(h)
	}
	ips := make([]string, len(gw.Spec.Addresses))
	for i, a := range gw.Spec.Addresses {
		ips[i] = string(a)
	}
	c := &cmv1.Certificate{
		TypeMeta:   certificateType,
		ObjectMeta: objectMeta(gw, n.Server),
		Spec: cmv1.CertificateSpec{
			CommonName:     dns[0],
			DNSNames:       dns,
			IPAddresses:    ips,
			SecretName:     n.ServerSecret,
			Duration:       spec.Duration,
			RenewBefore:    spec.RenewBefore,
			PrivateKey:     certPrivateKey(spec.PrivateKey),
			Usages:         []cmv1.KeyUsage{cmv1.UsageServerAuth, cmv1.UsageDigitalSignature},
			IssuerRef:      issuerRef(gw),
			SecretTemplate: &cmv1.CertificateSecretTemplate{Labels: commonLabels(gw.Name)},
		},
	}
	if spec.PrivateKey.EffectiveAlgorithm() == v1alpha1.KeyAlgorithmRSA {
		// RSA signatures in IKE_AUTH use the key itself; TLS-style key
		// encipherment is what older Windows clients check for.
		c.Spec.Usages = append(c.Spec.Usages, cmv1.UsageKeyEncipherment)
	}
	return c
}

func certPrivateKey(k v1alpha1.PrivateKeySpec) *cmv1.CertificatePrivateKey {
	algorithm := map[v1alpha1.KeyAlgorithm]cmv1.PrivateKeyAlgorithm{
		v1alpha1.KeyAlgorithmRSA:     cmv1.RSAKeyAlgorithm,
		v1alpha1.KeyAlgorithmECDSA:   cmv1.ECDSAKeyAlgorithm,
		v1alpha1.KeyAlgorithmEd25519: cmv1.Ed25519KeyAlgorithm,
	}[k.EffectiveAlgorithm()]
	return &cmv1.CertificatePrivateKey{RotationPolicy: cmv1.RotationPolicyAlways, Algorithm: algorithm, Size: int(k.EffectiveSize())}
}

// caConfigMap publishes the CA bundle clients must trust.
func caConfigMap(gw *v1alpha1.VPNGateway, caPEM []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(gw, namesFor(gw.Name).CAConfigMap),
		Data:       map[string]string{"ca.crt": string(caPEM)},
	}
}
