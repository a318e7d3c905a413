package swan

import (
	"net/netip"
	"slices"
	"strings"
)

// Result is everything Build decided about one gateway. It is the only
// place that says which pools, tunnels and users are valid: the agent's
// charon apply, firewall, session bookkeeping and RADIUS file, the
// manager's conditions and the kubectl plugin all read it, and none of
// them looks at the raw resources again to decide for itself.
type Result struct {
	// Model is what charon holds.
	Model Model
	// Replica is the gateway pod the result is for (Resources.Replica).
	Replica Replica
	// Pools are the accepted MobilePools, ordered by name.
	Pools []AcceptedPool
	// Tunnels are the accepted Tunnels, ordered by name.
	Tunnels []AcceptedTunnel
	// Users are the identities that may hold client sessions, ordered by
	// user name, each with the connection that names it (on certificate
	// gateways no connection accepts an identity that is not here). With
	// LocalUsers false (RADIUS decides who logs in) it is empty and every
	// authenticated identity may hold one.
	Users      []AcceptedUser
	LocalUsers bool
	// MaxSessions is the gateway's limit of sessions per identity, for
	// identities that are no VPNUser (RADIUS users).
	MaxSessions int
	// RADIUS are the eap-radius servers of an EAPRADIUS gateway; RADIUSOn
	// says whether the gateway uses them at all, so that a gateway whose
	// servers were all refused writes an empty servers file.
	RADIUS   []RADIUSServer
	RADIUSOn bool
	// AgentRADIUS says that the agent's own RADIUS server on the pod's
	// loopback authenticates the users (EAPMSCHAPv2), with the NT hashes
	// of Users: charon's eap-radius plugin must point at it.
	AgentRADIUS bool
	// Refused are the address ranges of refused pools and the remote
	// networks of refused tunnels: traffic from them is dropped unless an
	// accepted object owns it.
	Refused []RefusedRange
	// Problems are the faults that kept objects out, sorted.
	Problems []Problem
	// Index is set when Resources.IndexUsers asked for it on a gateway
	// whose users the agent's RADIUS server checks: see UserIndex.
	Index *UserIndex
}

// AcceptedPool is a MobilePool charon serves, with its values parsed.
type AcceptedPool struct {
	Name string
	// Prefixes are its client address ranges (one per family).
	Prefixes []netip.Prefix
	// Served are the slices of Prefixes this replica owns (Prefixes
	// themselves when the gateway has one replica): the routes the LAN
	// needs toward this replica's node on a Routed return path.
	Served []netip.Prefix
	// LocalNetworks are the networks its clients reach; empty with FullTunnel.
	LocalNetworks []netip.Prefix
	FullTunnel    bool
	// ESPProposals are its CHILD_SA proposals as charon holds them.
	ESPProposals []string
	// Allow is its firewall allow list; Masquerade its effective setting.
	Allow      []AllowRule
	Masquerade bool
}

// AllowRule is one parsed MobilePool firewall allow entry. A zero
// Destination means any destination; Protocol is a v1alpha1.Protocol.
type AllowRule struct {
	Destination netip.Prefix
	Protocol    string
	Ports       []PortRange
}

// PortRange is an inclusive destination port range.
type PortRange struct{ From, To uint16 }

// AcceptedTunnel is a Tunnel charon serves.
type AcceptedTunnel struct {
	Name string
	// Connection is its charon connection name.
	Connection string
	// Children are its CHILD_SAs with their own networks, ordered by name.
	Children []AcceptedChild
}

// AcceptedChild is one CHILD_SA of an accepted tunnel. Name is the child's
// name in charon.
type AcceptedChild struct {
	Name           string
	LocalNetworks  []netip.Prefix
	RemoteNetworks []netip.Prefix
}

// AcceptedUser is a VPNUser that may log in.
type AcceptedUser struct {
	Name     string
	Identity string
	// Method is the charon auth method that proves the identity
	// ("eap-mschapv2", "eap-tls", "pubkey", "eap-radius").
	Method string
	// Connection is the charon connection the user ends up on.
	Connection string
	// MaxSessions is how many sessions the identity may hold at once.
	MaxSessions int
	// NTHash is the NT hash (16 bytes) the agent's RADIUS server checks the
	// user's MS-CHAPv2 response against; set with AgentRADIUS. It is a
	// password equivalent: never render or log it.
	NTHash [16]byte
	// Address is the user's static virtual address, if it has one. With
	// AgentRADIUS the agent's server sends it as Framed-IP-Address.
	Address netip.Addr
	// Group is the Class the agent's RADIUS server sends with AgentRADIUS:
	// the remote group of the connection the user belongs on (see
	// EAPRADIUS.ClassGroup).
	Group string
}

// RefusedRange is a network whose traffic no accepted object owns because
// the object that claimed it was refused.
type RefusedRange struct {
	Kind, Name string
	Prefix     netip.Prefix
}

// Pool returns the accepted pool of that name.
func (r *Result) Pool(name string) (*AcceptedPool, bool) {
	i, ok := slices.BinarySearchFunc(r.Pools, name, func(p AcceptedPool, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil, false
	}
	return &r.Pools[i], true
}

// ServedUser is the Users entry of the user named name, nil when Build did
// not accept it (disabled, expired, without a usable secret).
func (r *Result) ServedUser(name string) *AcceptedUser {
	// Users are sorted by name: the manager looks up every user of a
	// gateway in a pass.
	i, ok := slices.BinarySearchFunc(r.Users, name, func(u AcceptedUser, n string) int { return strings.Compare(u.Name, n) })
	if !ok {
		return nil
	}
	return &r.Users[i]
}
