// Package profile builds client profiles for one user of one gateway: an
// Apple .mobileconfig, a Windows PowerShell script, a strongSwan Android
// .sswan file, a NetworkManager-strongswan nmcli script and a swanctl.conf.
//
// Every builder is pure and reads only an Input, which FromBuild fills from
// the same swan.Model the gateway's charon is given, so a profile cannot
// offer what its gateway refuses. Before building, Check refuses a profile
// that cannot work (a name the server certificate does not carry, no
// proposal the client can express that the gateway accepts) and says which
// setting would make it work.
//
// Passwords are written into a profile only when the caller puts one into
// Input.Password; FromBuild never does, and the gateway only holds NT hashes.
package profile

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// Auth is how the client authenticates to the gateway.
type Auth string

// Authentication methods, after the gateway's clientAuth.method.
const (
	// AuthEAP is EAP-MSCHAPv2 with a password (also behind EAP-RADIUS).
	AuthEAP Auth = "EAP"
	// AuthEAPTLS is EAP-TLS with a client certificate.
	AuthEAPTLS Auth = "EAPTLS"
	// AuthCertificate is IKEv2 public-key authentication with a client certificate.
	AuthCertificate Auth = "Certificate"
)

// Input is everything a profile says: the gateway as the client sees it, the
// proposals it accepts, and the user.
type Input struct {
	// Namespace and Gateway name the VPNGateway; with User they make every
	// identifier and UUID of the profile, so a reinstalled profile replaces
	// the old one.
	Namespace string
	Gateway   string
	// Dial is the hostname or address the client connects to.
	Dial string
	// RemoteID is the gateway's IKE identity (the client's "remote ID").
	RemoteID string
	// CAPEM is the CA the client trusts for the gateway's certificate;
	// ServerCertPEM is the gateway's certificate, checked by Check.
	CAPEM         []byte
	ServerCertPEM []byte
	// IKEProposals and ESPProposals are the gateway's proposals as strongSwan
	// tokens, most preferred first (swan.Connection.Proposals and
	// swan.Child.ESPProposals).
	IKEProposals []string
	ESPProposals []string
	// LocalNetworks are the networks behind the gateway the client routes
	// into the tunnel; with FullTunnel it routes everything.
	LocalNetworks []netip.Prefix
	FullTunnel    bool
	// VirtualIPs are the address families the user's pools hand out
	// ("0.0.0.0" for IPv4, "::" for IPv6), as swanctl's vips asks for them.
	VirtualIPs    []string
	DNSServers    []string
	DNSDomains    []string
	DefaultDomain string
	MOBIKE        bool
	DPDDelay      time.Duration
	IKELifetime   time.Duration
	ESPLifetime   time.Duration
	// Pool names the user's pools in messages (the model's child name).
	Pool string
	// User is the VPNUser's name, Identity its IKE/EAP identity.
	User     string
	Identity string
	Auth     Auth
	// PKCS12 is the user's certificate and key for AuthEAPTLS and
	// AuthCertificate; PKCS12Password unlocks it where the format stores it.
	PKCS12         []byte
	PKCS12Password string
	// Password is written into formats that can store one, and only if set.
	Password string
	// OnDemand makes Apple devices bring the tunnel up by themselves.
	OnDemand bool
}

// Name is what the connection is called on the device.
func (in Input) Name() string { return in.Gateway + " (" + in.Dial + ")" }

// Options are what FromBuild cannot read from the model.
type Options struct {
	// Dial overrides the address the profile dials (default: the gateway's
	// first hostname). It must be one of the gateway's hostnames or addresses.
	Dial           string
	PKCS12         []byte
	PKCS12Password string
	Password       string
	OnDemand       bool
}

// FromBuild fills an Input for user from the model Build made of the
// gateway's resources: the user's connection, its child, its pools'
// attributes and the gateway's certificates. A user Build left out (see its
// Problems) has no connection to read, and FromBuild says so.
func FromBuild(res *swan.Result, gw *v1alpha1.VPNGateway, user *v1alpha1.VPNUser, opts Options) (Input, error) {
	return FromEntry(res, res.ServedUser(user.Name), gw, user, opts)
}

// FromEntry is FromBuild for a holder that keeps the served users apart
// from res: entry is the user's Result.Users entry, nil when it is not
// served.
func FromEntry(res *swan.Result, entry *swan.AcceptedUser, gw *v1alpha1.VPNGateway, user *v1alpha1.VPNUser, opts Options) (Input, error) {
	m := res.Model
	conn, ok := userConnection(res, entry)
	if !ok || len(conn.Children) == 0 || len(conn.Remote) == 0 || len(conn.Local) == 0 {
		return Input{}, fmt.Errorf("VPNUser %s has no connection on gateway %s: see the problems the gateway's resources have", user.Name, gw.Name)
	}
	dial := opts.Dial
	if dial == "" && len(gw.Spec.Hostnames) > 0 {
		dial = string(gw.Spec.Hostnames[0])
	}
	if !gatewayAnswersOn(gw, dial) {
		return Input{}, fmt.Errorf("gateway %s has no hostname or address %q to dial", gw.Name, dial)
	}
	child := conn.Children[0]
	in := Input{
		Namespace:      gw.Namespace,
		Gateway:        gw.Name,
		Dial:           dial,
		RemoteID:       conn.Local[0].ID,
		CAPEM:          caPEM(m),
		ServerCertPEM:  certPEM(m, swan.GatewayCert),
		IKEProposals:   slices.Clone(conn.Proposals),
		ESPProposals:   slices.Clone(child.ESPProposals),
		MOBIKE:         conn.Mobike,
		DPDDelay:       conn.DPDDelay,
		IKELifetime:    conn.RekeyTime + conn.OverTime,
		ESPLifetime:    child.LifeTime,
		Pool:           child.Name,
		User:           user.Name,
		Identity:       string(user.Spec.Identity),
		PKCS12:         opts.PKCS12,
		PKCS12Password: opts.PKCS12Password,
		Password:       opts.Password,
		OnDemand:       opts.OnDemand,
	}
	switch conn.Remote[0].Method {
	case "eap-tls":
		in.Auth = AuthEAPTLS
	case "pubkey":
		in.Auth = AuthCertificate
	default:
		in.Auth = AuthEAP
	}
	for _, ts := range child.LocalTS {
		p, err := netip.ParsePrefix(ts)
		if err != nil {
			continue
		}
		if p.Bits() == 0 {
			in.FullTunnel = true
			continue
		}
		in.LocalNetworks = append(in.LocalNetworks, p)
	}
	if in.FullTunnel {
		in.LocalNetworks = nil
	}
	poolAttributes(m, conn.Pools, &in)
	return in, nil
}

// userConnection is the connection Build put a served user on.
func userConnection(res *swan.Result, entry *swan.AcceptedUser) (swan.Connection, bool) {
	if entry == nil {
		return swan.Connection{}, false
	}
	j := slices.IndexFunc(res.Model.Connections, func(c swan.Connection) bool { return c.Name == entry.Connection })
	if j < 0 {
		return swan.Connection{}, false
	}
	return res.Model.Connections[j], true
}

func gatewayAnswersOn(gw *v1alpha1.VPNGateway, dial string) bool {
	for _, h := range gw.Spec.Hostnames {
		if strings.EqualFold(string(h), dial) {
			return true
		}
	}
	for _, a := range gw.Spec.Addresses {
		x, err1 := netip.ParseAddr(string(a))
		y, err2 := netip.ParseAddr(dial)
		if err1 == nil && err2 == nil && x == y {
			return true
		}
	}
	return false
}

// poolAttributes copies the DNS settings and address families of the
// user's pools, in pool order, each value once.
func poolAttributes(m swan.Model, pools []string, in *Input) {
	add := func(list *[]string, vs ...string) {
		for _, v := range vs {
			if !slices.Contains(*list, v) {
				*list = append(*list, v)
			}
		}
	}
	for _, name := range pools {
		i := slices.IndexFunc(m.Pools, func(p swan.Pool) bool { return p.Name == name })
		if i < 0 {
			continue
		}
		p := m.Pools[i]
		if strings.Contains(p.Addrs, ":") {
			add(&in.VirtualIPs, "::")
		} else {
			add(&in.VirtualIPs, "0.0.0.0")
		}
		for _, a := range p.Attributes {
			switch a.Key {
			case "dns":
				add(&in.DNSServers, a.Values...)
			case "25":
				add(&in.DNSDomains, a.Values...)
			case "28674":
				if in.DefaultDomain == "" && len(a.Values) > 0 {
					in.DefaultDomain = a.Values[0]
				}
			}
		}
	}
	// IPv4 first, as clients ask.
	slices.SortFunc(in.VirtualIPs, func(a, b string) int { return strings.Compare(a, b) })
}

func certPEM(m swan.Model, name string) []byte {
	for _, c := range m.Certs {
		if c.Name == name {
			return c.PEM
		}
	}
	return nil
}

// caPEM is the gateway's CA bundle. Build leaves a CA out of its own
// entries when it already travels in the server's chain; then the chain's
// last certificate is the CA.
func caPEM(m swan.Model) []byte {
	var out, chain []byte
	for _, c := range m.Certs {
		switch {
		case c.Name == swan.GatewayCA || strings.HasPrefix(c.Name, swan.GatewayCA+"-"):
			out = append(out, c.PEM...)
		case strings.HasPrefix(c.Name, swan.GatewayCert+"-chain-"):
			chain = c.PEM
		}
	}
	if len(out) == 0 {
		return chain
	}
	return out
}
