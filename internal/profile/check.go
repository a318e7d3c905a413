package profile

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Format is a kind of client profile.
type Format string

// Formats.
const (
	FormatApple          Format = "apple"
	FormatWindows        Format = "windows"
	FormatAndroid        Format = "android"
	FormatNetworkManager Format = "networkmanager"
	FormatSwanctl        Format = "swanctl"
)

// Formats lists every format, in the order the CLI documents them.
var Formats = []Format{FormatApple, FormatWindows, FormatAndroid, FormatNetworkManager, FormatSwanctl}

// Extension is the file name suffix a device expects for the format.
func (f Format) Extension() string {
	switch f {
	case FormatApple:
		return ".mobileconfig"
	case FormatWindows:
		return ".ps1"
	case FormatAndroid:
		return ".sswan"
	case FormatNetworkManager:
		return ".sh"
	default:
		return ".conf"
	}
}

// Build builds the profile of format f.
func Build(f Format, in Input) ([]byte, error) {
	switch f {
	case FormatApple:
		return Apple(in)
	case FormatWindows:
		return Windows(in)
	case FormatAndroid:
		return Android(in)
	case FormatNetworkManager:
		return NetworkManager(in)
	case FormatSwanctl:
		return Swanctl(in)
	}
	return nil, fmt.Errorf("unknown profile format %q (one of %v)", f, Formats)
}

// Check refuses a profile that cannot work and says why: the gateway's
// certificate must chain to the CA the profile installs and name both the
// address the profile dials and the identity it expects, Windows needs the
// serverAuth EKU, and the client must be able to propose something the
// gateway accepts.
func Check(in Input, f Format) error {
	var errs []error
	if len(in.IKEProposals) == 0 || len(in.ESPProposals) == 0 {
		errs = append(errs, errors.New("the gateway offers no IKE or no ESP proposals"))
	}
	if in.Identity == "" {
		errs = append(errs, errors.New("the user has no identity"))
	}
	errs = append(errs, checkCertificate(in, f)...)
	switch f {
	case FormatApple:
		if _, err := apple.choose(in); err != nil {
			errs = append(errs, err)
		}
	case FormatWindows:
		if _, err := windows.choose(in); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkCertificate(in Input, f Format) []error {
	roots := x509.NewCertPool()
	cas := parseCerts(in.CAPEM)
	if len(cas) == 0 {
		return []error{errors.New("the gateway's CA certificate is missing: the profile would not trust the gateway")}
	}
	for _, c := range cas {
		roots.AddCert(c)
	}
	chain := parseCerts(in.ServerCertPEM)
	if len(chain) == 0 {
		return []error{errors.New("the gateway's server certificate is missing: it cannot be checked against the address the profile dials")}
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	var errs []error
	// Checked at the certificate's own start, so the verdict does not
	// depend on the clock; expiry is cert-manager's business.
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: leaf.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		errs = append(errs, fmt.Errorf("the server certificate does not chain to the CA the profile installs: %w", err))
	}
	if !namesHost(leaf, in.Dial) {
		errs = append(errs, fmt.Errorf("the server certificate has no %s SAN for %q, the address the profile dials (it has %s); add it to the VPNGateway's spec.hostnames or spec.addresses", sanKind(in.Dial), in.Dial, sans(leaf)))
	}
	if id := in.RemoteID; id != in.Dial && !strings.Contains(id, "=") && !namesHost(leaf, id) {
		errs = append(errs, fmt.Errorf("the server certificate has no SAN for %q, the gateway's identity the profile expects (it has %s)", id, sans(leaf)))
	}
	if f == FormatWindows && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		errs = append(errs, errors.New("Windows refuses a server certificate without the serverAuth extended key usage"))
	}
	return errs
}

// namesHost: an address must be an IP SAN and a name a DNS SAN, as Windows
// and Apple check them.
func namesHost(c *x509.Certificate, host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool {
			b, ok := netip.AddrFromSlice(ip)
			return ok && b.Unmap() == a.Unmap()
		})
	}
	return len(c.DNSNames) > 0 && c.VerifyHostname(host) == nil
}

func sanKind(host string) string {
	if _, err := netip.ParseAddr(host); err == nil {
		return "IP"
	}
	return "DNS"
}

func sans(c *x509.Certificate) string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
