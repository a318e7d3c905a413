package swan

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"golang.org/x/crypto/md4" //nolint:staticcheck // MSCHAPv2 is defined over MD4; nothing else uses it.

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// SecretKeyRef names one key of a Secret in the gateway's namespace.
type SecretKeyRef struct{ Name, Key string }

// Resources is everything of one gateway that its charon configuration depends
// on. Build reads nothing else: no clock, no API server, no files.
type Resources struct {
	Gateway v1alpha1.VPNGateway
	// Pools, Users and Tunnels may include objects of other gateways; those
	// are reported and left out.
	Pools   []v1alpha1.MobilePool
	Users   []v1alpha1.VPNUser
	Tunnels []v1alpha1.Tunnel
	// Secrets maps the name of each Secret in the gateway's namespace that
	// the objects reference to its data.
	Secrets map[string]map[string][]byte
	// PasswordHashes maps Secret name and key to the NT hash (16 bytes, see
	// PasswordHash) of a users' passwordSecretRef's value: as the agent
	// receives them from the manager, so plain passwords never leave the
	// manager, and as the manager caches them, so an unchanged password is
	// not hashed again. A reference it lacks is read from Secrets.
	PasswordHashes map[SecretKeyRef][]byte
	// ServerCertPEM is the gateway's certificate followed by its intermediates,
	// ServerKeyPEM its private key and CAPEM the CA clients trust (tls.crt,
	// tls.key and ca.crt of cert-manager's Secret). Empty values keep the file
	// names in the configuration without content (an offline preview).
	ServerCertPEM []byte
	ServerKeyPEM  []byte
	CAPEM         []byte
	// Now decides which users have expired.
	Now time.Time
	// Replica is the gateway pod the configuration is for: it serves its
	// own slices of the pools (see Slices).
	Replica Replica
	// IndexUsers asks for Result.Index: the agent keeps it to decide
	// single users' changes without a whole Build.
	IndexUsers bool
}

// Problem is a fault in the resources that keeps an object out of the model.
type Problem struct {
	// Reason is a v1alpha1 condition reason (or one of the Reason constants here).
	Reason string
	// Kind and Name identify the offending object.
	Kind string
	Name string
	// Message names the values involved, never a secret.
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s %s: %s: %s", p.Kind, p.Name, p.Reason, p.Message)
}

// Object kinds named in Problems.
const (
	KindVPNGateway = "VPNGateway"
	KindMobilePool = "MobilePool"
	KindVPNUser    = "VPNUser"
	KindTunnel     = "Tunnel"
)

// NTHashKey is the Secret key that holds a ready NT hash (32 hex digits)
// instead of a password, see v1alpha1.VPNUserSpec.PasswordSecretRef.
const NTHashKey = "nthash"

// Names of model entries Build creates for the gateway's own credentials.
const (
	GatewayCert = "gateway"
	GatewayKey  = "gateway"
	GatewayCA   = "gateway-ca"
	ClientCA    = "client-ca"
	// SelectConnection asks for the EAP identity and hands over to a user's
	// connection (see selectRemoteAddrs); its prefix is that of no other kind.
	SelectConnection = "select-identity"
	neverGroup       = "ikegate-pool-selection"
	defaultLifetime  = 8 * time.Hour
	defaultESPLife   = time.Hour
	defaultDPDDelay  = 30 * time.Second
)

// Ordering of the mobile connections. charon picks a peer config before it
// knows the EAP identity, from the candidates' address and identity match;
// after authentication it walks the candidates in that order and takes the
// first one whose constraints the finished authentication meets. The remote
// address ranges below give the select connection the best score (/2), the
// per-user connections of pool groups the next (/1), and the group that takes
// everybody else %any, independent of load order.
var (
	selectRemoteAddrs = []string{"0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2", "::/2", "4000::/2", "8000::/2", "c000::/2"}
	pinRemoteAddrs    = []string{"0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"}
)

// Connection names. Kubernetes names never hold "_", and dots become "_",
// so the prefixes keep the kinds apart; long names are shortened (modelName).

// MobileConnectionName is the connection of the user group whose first pool is pool.
func MobileConnectionName(pool string) string { return modelName("mobile-", pool, "") }

// UserConnectionName is the connection of a user pinned to its group's pools.
func UserConnectionName(user string) string { return modelName("user-", user, "") }

// TunnelConnectionName is the connection of a Tunnel.
func TunnelConnectionName(tunnel string) string { return modelName(tunnelConnectionPrefix, tunnel, "") }

const tunnelConnectionPrefix = "tunnel-"

// IsTunnelConnection reports whether a charon connection name is one that
// TunnelConnectionName makes.
func IsTunnelConnection(name string) bool { return strings.HasPrefix(name, tunnelConnectionPrefix) }

// Build decides what of one gateway's objects charon serves and computes
// its configuration. Objects with problems are left out whole; the rest is
// built. Every object is first validated on its own, then pools and tunnels
// are admitted oldest first (a new object never displaces a working one),
// then the model is built from what was admitted.
func Build(in Resources) Result {
	b := &builder{in: in, gw: &in.Gateway}
	b.res.LocalUsers = in.Gateway.Spec.OnlyVPNUsers()
	b.res.AgentRADIUS = in.Gateway.Spec.UsesLocalUsers()
	b.res.MaxSessions = int(in.Gateway.Spec.EffectiveMaxSessionsPerUser())
	if in.IndexUsers && b.res.AgentRADIUS {
		// A copy: the index must not keep the builder, and with it every
		// user, alive.
		gw := in.Gateway
		b.index = newUserIndex(&gw)
	}
	b.credentials()
	pools, tunnels := b.admit(b.parsePools(), b.parseTunnels())
	b.mobile(pools)
	b.commitTunnels(tunnels)
	b.radius()
	b.refused()
	res := b.finish()
	if res.Index != nil {
		res.Index.finish(in.Users, &res)
	}
	return res
}

type builder struct {
	nt       ntHasher
	in       Resources
	gw       *v1alpha1.VPNGateway
	m        Model
	res      Result
	problems []Problem
	// hashes are the NT hashes of the local users with a usable password.
	hashes map[*v1alpha1.VPNUser][16]byte
	// index is filled for Result.Index when asked for.
	index *UserIndex
}

func (b *builder) problem(reason, kind, name, format string, args ...any) {
	b.problems = append(b.problems, Problem{Reason: reason, Kind: kind, Name: name, Message: fmt.Sprintf(format, args...)})
}

// radius adds the eap-radius servers of an EAPRADIUS gateway.
func (b *builder) radius() {
	b.res.RADIUSOn = b.gw.Spec.UsesRADIUS()
	servers, problems := RADIUSServers(b.gw, b.in.Secrets)
	b.res.RADIUS = servers
	b.problems = append(b.problems, problems...)
}

// refused records the networks of the gateway's pools and tunnels that are
// not served, so that the firewall can drop what comes from them.
func (b *builder) refused() {
	for i := range b.in.Pools {
		p := &b.in.Pools[i]
		if _, ok := b.res.Pool(p.Name); ok || p.Spec.GatewayRef.Name != b.gw.Name {
			continue
		}
		for _, a := range []v1alpha1.CIDR{p.Spec.Addresses.IPv4, p.Spec.Addresses.IPv6} {
			if pr, ok := parsePrefix(a); a != "" && ok {
				b.res.Refused = append(b.res.Refused, RefusedRange{KindMobilePool, p.Name, pr})
			}
		}
	}
	for i := range b.in.Tunnels {
		t := &b.in.Tunnels[i]
		if t.Spec.GatewayRef.Name != b.gw.Name || slices.ContainsFunc(b.res.Tunnels, func(a AcceptedTunnel) bool { return a.Name == t.Name }) {
			continue
		}
		for _, c := range t.Spec.Children {
			for _, n := range c.RemoteNetworks {
				if pr, ok := parsePrefix(n); ok {
					b.res.Refused = append(b.res.Refused, RefusedRange{KindTunnel, t.Name, pr})
				}
			}
		}
	}
}

func (b *builder) finish() Result {
	byName := func(a, b string) int { return strings.Compare(a, b) }
	slices.SortFunc(b.m.Connections, func(x, y Connection) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.m.Pools, func(x, y Pool) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.m.Secrets, func(x, y Secret) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.m.Certs, func(x, y Cert) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.m.Keys, func(x, y PrivateKey) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.m.Authorities, func(x, y Authority) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.problems, func(x, y Problem) int {
		return cmp.Or(byName(x.Kind, y.Kind), byName(x.Name, y.Name), byName(x.Reason, y.Reason), byName(x.Message, y.Message))
	})
	slices.SortFunc(b.res.Pools, func(x, y AcceptedPool) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.res.Users, func(x, y AcceptedUser) int { return byName(x.Name, y.Name) })
	slices.SortFunc(b.res.Refused, func(x, y RefusedRange) int {
		return cmp.Or(byName(x.Kind, y.Kind), byName(x.Name, y.Name), x.Prefix.Addr().Compare(y.Prefix.Addr()), x.Prefix.Bits()-y.Prefix.Bits())
	})
	b.res.Refused = slices.Compact(b.res.Refused)
	b.res.Model, b.res.Problems, b.res.Replica = b.m, b.problems, b.in.Replica
	return b.res
}

// LocalIdentity is the IKE identity the gateway presents.
func LocalIdentity(gw *v1alpha1.VPNGateway) string {
	if gw.Spec.LocalIdentity != "" {
		return string(gw.Spec.LocalIdentity)
	}
	if len(gw.Spec.Hostnames) > 0 {
		return string(gw.Spec.Hostnames[0])
	}
	return "%any"
}

// credentials adds the gateway's certificate, chain, key and CA.
func (b *builder) credentials() {
	blocks := pemCerts(b.in.ServerCertPEM)
	var leaf []byte
	if len(blocks) > 0 {
		leaf = blocks[0]
	}
	b.m.Certs = append(b.m.Certs, Cert{Name: GatewayCert, Type: "x509", PEM: leaf})
	for i, c := range blocks[min(1, len(blocks)):] {
		b.m.Certs = append(b.m.Certs, Cert{Name: fmt.Sprintf("%s-chain-%d", GatewayCert, i+1), Type: "x509ca", PEM: c})
	}
	for i, c := range pemCerts(b.in.CAPEM) {
		name := GatewayCA
		if i > 0 {
			name = fmt.Sprintf("%s-%d", GatewayCA, i+1)
		}
		if !slices.ContainsFunc(blocks, func(x []byte) bool { return bytes.Equal(x, c) }) {
			b.m.Certs = append(b.m.Certs, Cert{Name: name, Type: "x509ca", PEM: c})
		}
	}
	b.m.Keys = append(b.m.Keys, PrivateKey{Name: GatewayKey, Type: "any", PEM: b.in.ServerKeyPEM})
}

// pemCerts splits a PEM bundle into one PEM encoding per certificate.
func pemCerts(data []byte) [][]byte {
	var out [][]byte
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return out
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: blk.Bytes}))
		}
	}
}

// caBundle adds the certificates of a referenced PEM bundle as x509ca entries
// named prefix, prefix-2, ... and returns their names.
func (b *builder) caBundle(ref v1alpha1.SecretKeyReference, prefix, kind, name, what string) ([]string, bool) {
	data, ok := b.secretValue(ref, kind, name, what)
	if !ok {
		return nil, false
	}
	certs := pemCerts(data)
	if len(certs) == 0 {
		b.problem(v1alpha1.ReasonSecretInvalid, kind, name, "%s: key %q of Secret %s holds no PEM certificate", what, ref.Key, ref.Name)
		return nil, false
	}
	names := make([]string, len(certs))
	for i, c := range certs {
		names[i] = prefix
		if i > 0 {
			names[i] = fmt.Sprintf("%s-%d", prefix, i+1)
		}
		b.m.Certs = append(b.m.Certs, Cert{Name: names[i], Type: "x509ca", PEM: c})
	}
	return names, true
}

// secretValue looks a Secret key up and reports a missing Secret or key.
func (b *builder) secretValue(ref v1alpha1.SecretKeyReference, kind, name, what string) ([]byte, bool) {
	data, ok := b.in.Secrets[ref.Name]
	if !ok {
		b.problem(v1alpha1.ReasonSecretNotFound, kind, name, "%s: Secret %s not found", what, ref.Name)
		return nil, false
	}
	v, ok := data[ref.Key]
	if !ok {
		b.problem(v1alpha1.ReasonSecretKeyNotFound, kind, name, "%s: Secret %s has no key %q", what, ref.Name, ref.Key)
		return nil, false
	}
	if len(v) == 0 {
		b.problem(v1alpha1.ReasonSecretInvalid, kind, name, "%s: key %q of Secret %s is empty", what, ref.Key, ref.Name)
		return nil, false
	}
	return v, true
}

// belongs reports objects of other gateways.
func (b *builder) belongs(ref v1alpha1.GatewayReference, kind, name string) bool {
	if ref.Name == b.gw.Name {
		return true
	}
	b.problem(v1alpha1.ReasonWrongGateway, kind, name, "gatewayRef names gateway %q, not %q", ref.Name, b.gw.Name)
	return false
}

// NTHash is the NT hash of a password: MD4 over its UTF-16LE encoding.
func NTHash(password string) []byte {
	var n ntHasher
	return n.sum(password)
}

// ntHasher reuses its MD4 state and buffer across users.
type ntHasher struct {
	h   hash.Hash
	buf []byte
}

func (n *ntHasher) sum(password string) []byte {
	if n.h == nil {
		n.h = md4.New()
	}
	n.h.Reset()
	n.buf = n.buf[:0]
	for _, r := range password {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			n.buf = append(n.buf, byte(r1), byte(r1>>8), byte(r2), byte(r2>>8))
			continue
		}
		n.buf = append(n.buf, byte(r), byte(r>>8))
	}
	n.h.Write(n.buf)
	return n.h.Sum(nil)
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// rekey returns the rekey time (set, or 90% of the lifetime) and the margin
// charon adds before the hard end (over_time).
func rekey(life time.Duration, rk *metav1.Duration) (time.Duration, time.Duration) {
	r := life * 9 / 10
	if rk != nil && rk.Duration > 0 && rk.Duration < life {
		r = rk.Duration
	}
	return r, life - r
}

func dpdAction(a v1alpha1.DPDAction) string {
	switch a {
	case "Trap":
		return "trap"
	case "Restart":
		return "restart"
	case "None":
		return "none"
	default:
		return "clear"
	}
}

func fragmentation(f string) string {
	switch f {
	case "Accept", "Force", "No":
		return strings.ToLower(f)
	default:
		return "yes"
	}
}

// parsePrefix parses a CIDR the API server would have validated.
func parsePrefix(s v1alpha1.CIDR) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(string(s))
	return p.Masked(), err == nil
}

func overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// ntHashLen is the length of an NT hash (MD4).
const ntHashLen = 16

// PasswordHash is the NT hash a passwordSecretRef's value stands for, as
// Build computes it: under NTHashKey the value's 32 hex digits, under any
// other key the password's hash. It reports false for a value Build refuses.
func PasswordHash(key string, value []byte) ([]byte, bool) {
	if len(value) == 0 {
		return nil, false
	}
	if key == NTHashKey {
		return hexHash(string(value))
	}
	return NTHash(string(value)), true
}

func hexHash(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 32 {
		return nil, false
	}
	h, err := hex.DecodeString(s)
	return h, err == nil
}

func selectorKey(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	return metav1.FormatLabelSelector(s)
}

func selectorOf(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}
