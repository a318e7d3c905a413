package swan

import (
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// poolGroup is the set of MobilePools with one user selector: their clients
// share one connection (or one per user, see mobile) and one child.
type poolGroup struct {
	key   string // canonical selector; "" selects everybody no other group selects
	sel   labels.Selector
	pools []*parsedPool
	users []*v1alpha1.VPNUser
	// child is what every connection of the group carries.
	child Child
	// sig is what all pools of the group must agree on: ESP, full tunnel
	// and the attributes that do not depend on the address family.
	sig string
}

// clientAuth returns the remote authentication round of mobile clients.
func (b *builder) clientAuth() (Auth, bool) {
	gw := b.gw
	switch gw.Spec.EffectiveClientAuthMethod() {
	case v1alpha1.ClientAuthEAPMSCHAPv2:
		// The agent's RADIUS server on the pod's loopback checks the
		// MS-CHAPv2 responses against the NT hashes it holds (Result.Users),
		// so charon holds no user secret: a user change is a map update
		// in the agent, and a charon restart has no secrets to reload.
		return Auth{Method: "eap-radius", EAPID: "%any"}, true
	case v1alpha1.ClientAuthEAPRADIUS:
		return Auth{Method: "eap-radius", EAPID: "%any"}, true
	case v1alpha1.ClientAuthEAPTLS, v1alpha1.ClientAuthPublicKey:
		ref := gw.Spec.ClientAuth.ClientCA
		if ref == nil {
			b.problem(v1alpha1.ReasonUnsupportedAuth, KindVPNGateway, gw.Name, "clientAuth.method %s needs clientAuth.clientCA", gw.Spec.ClientAuth.Method)
			return Auth{}, false
		}
		cas, ok := b.caBundle(*ref, ClientCA, KindVPNGateway, gw.Name, "clientAuth.clientCA")
		if !ok {
			return Auth{}, false
		}
		if gw.Spec.ClientAuth.Method == v1alpha1.ClientAuthEAPTLS {
			return Auth{Method: "eap-tls", EAPID: "%any", CACerts: cas}, true
		}
		return Auth{Method: "pubkey", ID: "%any", CACerts: cas}, true
	default:
		b.problem(v1alpha1.ReasonUnsupportedAuth, KindVPNGateway, gw.Name, "clientAuth.method %q is not one of EAPMSCHAPv2, EAPRADIUS, EAPTLS, PublicKey", gw.Spec.ClientAuth.Method)
		return Auth{}, false
	}
}

// mobile builds the connections and pools of mobile clients
// from the accepted pools.
//
// Pools with the same user selector form a group. Every user belongs to at
// most one group. The group taking everybody else (no selector, or with local
// users the group of the first pool, since only selected users have secrets)
// gets one connection that accepts any identity, except on certificate
// gateways (see catchAll). Each user of another group gets a
// connection of its own that names its identity and carries its group's pools;
// charon switches to it after authentication (see selectRemoteAddrs). When
// the agent's RADIUS server checks the users (AgentRADIUS) it names each
// user's group and static address itself, and no connection names a user
// (see radiusGroupConnections).
func (b *builder) mobile(pools []*parsedPool) {
	base, remote, gwOK := b.gatewayIKE()
	groups := b.groupPools(pools)
	users := b.validUsers()
	b.assignUsers(groups, users)
	if b.index != nil {
		b.index.assignedTo(groups, users, remote.Method)
	}
	live := b.liveGroups(groups, len(users) > 0)
	if !gwOK {
		return
	}
	statics := b.staticAddresses(live)
	if b.gw.Spec.UsesLocalUsers() {
		// A user whose secret is unusable gets no connection.
		for _, g := range live {
			g.users = slices.DeleteFunc(g.users, func(u *v1alpha1.VPNUser) bool { return !b.ntHash(u) })
		}
	}
	if b.res.AgentRADIUS {
		for _, g := range live {
			b.acceptGroup(g)
			b.radiusGroupConnections(g, base, remote, statics)
		}
		b.res.Index = b.index
		return
	}
	catchAll := b.catchAll(live)
	pins := false
	for _, g := range live {
		b.acceptGroup(g)
		pins = b.groupConnections(g, g == catchAll, base, remote, statics) || pins
	}
	if pins {
		// Asks for the EAP identity and, refusing everybody afterwards, makes
		// charon move on to the connection that names the identity.
		c := base
		c.Name = SelectConnection
		c.RemoteAddrs = selectRemoteAddrs
		r := remote
		r.Groups = []string{neverGroup}
		c.Remote = []Auth{r}
		b.m.Connections = append(b.m.Connections, c)
	}
}

// gatewayIKE validates the gateway's Phase 1 and client authentication and
// returns what every mobile connection shares, and the clients' round.
func (b *builder) gatewayIKE() (Connection, Auth, bool) {
	gw := b.gw
	ike := gw.Spec.IKE
	ikeProps, err := ikeProposals(ike.Preset, ike.Proposals)
	ok := true
	if err != nil {
		b.problem(v1alpha1.ReasonInvalidSpec, KindVPNGateway, gw.Name, "ike proposals: %v", err)
		ok = false
	}
	if msg := algorithmPolicy("ike proposals", ikeProps, gw.Spec.AllowInsecureAlgorithms); msg != "" {
		b.problem(v1alpha1.ReasonInsecureAlgorithm, KindVPNGateway, gw.Name, "%s", msg)
		ok = false
	}
	if ike.Version != 0 && ike.Version != 2 {
		b.problem(v1alpha1.ReasonInvalidSpec, KindVPNGateway, gw.Name, "ike.version %d: mobile clients need IKEv2", ike.Version)
		ok = false
	}
	if !ok {
		return Connection{}, Auth{}, false
	}
	// The client CA joins the model only with a mobile side that uses it.
	remote, ok := b.clientAuth()
	if !ok {
		return Connection{}, Auth{}, false
	}
	lifetime := durationOr(ike.Lifetime, defaultLifetime)
	rekeyT, over := rekey(lifetime, ike.RekeyTime)
	base := Connection{
		Version:       2,
		Proposals:     ikeProps,
		Encap:         ike.ForceEncapsulation,
		Mobike:        ike.EffectiveMOBIKE(),
		DPDDelay:      durationOr(ike.DPD.Delay, defaultDPDDelay),
		Fragmentation: fragmentation(ike.Fragmentation),
		SendCert:      "always",
		SendCertReq:   remote.Method == "pubkey" || remote.Method == "eap-tls",
		RekeyTime:     rekeyT,
		OverTime:      over,
		// Several devices of one user each keep their IKE_SA. With charon's
		// default ("no") a device's INITIAL_CONTACT destroys the others
		// without a DELETE; the agent enforces each user's maxSessions.
		Unique: "never",
		Local:  []Auth{{Method: "pubkey", ID: LocalIdentity(gw), Certs: []string{GatewayCert}}},
	}
	if ike.DPD.Delay != nil && ike.DPD.Delay.Duration == 0 {
		base.DPDDelay = 0
	}
	if ike.ReauthTime != nil {
		base.ReauthTime = ike.ReauthTime.Duration
	}
	return base, remote, true
}

// liveGroups drops the groups that serve nobody: without users, when only
// VPNUsers can log in (or the group selects users and none matched).
func (b *builder) liveGroups(groups []*poolGroup, anyUser bool) []*poolGroup {
	var live []*poolGroup
	for _, g := range groups {
		if len(g.users) > 0 || (!b.res.LocalUsers && g.key == "") {
			live = append(live, g)
			continue
		}
		what := "its userSelector matches no VPNUser of the gateway"
		switch {
		case g.key == "" && !anyUser:
			what = "the gateway has no VPNUser that may log in"
		case g.key == "":
			what = "every VPNUser of the gateway is selected by another pool"
		}
		for _, p := range g.pools {
			b.problem(v1alpha1.ReasonPoolUnused, KindMobilePool, p.obj.Name, "%s", what)
		}
	}
	return live
}

// catchAll is the group whose connection accepts any identity, if any.
// Certificate gateways have none: every certificate of the client CA would
// pass, including those of disabled, expired and deleted users, so each
// user gets a connection that names its identity.
func (b *builder) catchAll(live []*poolGroup) *poolGroup {
	if m := b.gw.Spec.EffectiveClientAuthMethod(); m == v1alpha1.ClientAuthEAPTLS || m == v1alpha1.ClientAuthPublicKey {
		return nil
	}
	for _, g := range live {
		if g.key == "" {
			return g
		}
	}
	if b.res.LocalUsers && len(live) > 0 {
		// Only selected users have secrets, so one group may take "anybody
		// else". It is the group of the first pool by name rather than the
		// largest: a user added to a group must never turn another group's
		// connection into per-user ones (or back), which would reload the
		// connections of everybody in both groups.
		return live[0]
	}
	return nil
}

// acceptGroup records the group's pools as served.
func (b *builder) acceptGroup(g *poolGroup) {
	for _, pp := range g.pools {
		b.res.Pools = append(b.res.Pools, AcceptedPool{
			Name:          pp.obj.Name,
			Prefixes:      pp.addrs,
			Served:        b.served(pp.addrs),
			LocalNetworks: pp.local,
			FullTunnel:    pp.obj.Spec.FullTunnel,
			ESPProposals:  pp.esp,
			Allow:         pp.allow,
			Masquerade:    pp.obj.Spec.EffectiveMasquerade(&b.gw.Spec),
		})
	}
}

// groupConnections adds the connections of one group: the one that takes
// anybody for the catch-all group, one per user otherwise and for users
// with a static address. It reports whether a user connection needs the
// select connection in front of it.
func (b *builder) groupConnections(g *poolGroup, catchAll bool, base Connection, remote Auth, statics map[*v1alpha1.VPNUser]netip.Addr) bool {
	groupPools, userPools, _ := b.pools(g, statics)
	pins := false
	catchAllName := MobileConnectionName(g.pools[0].obj.Name)
	if catchAll {
		c := base
		c.Name = catchAllName
		c.Pools = groupPools
		c.Remote = []Auth{remote}
		c.Children = []Child{g.child}
		b.m.Connections = append(b.m.Connections, c)
	}
	for _, u := range g.users {
		_, static := statics[u]
		if catchAll && !static {
			b.acceptUser(u, remote.Method, catchAllName, netip.Addr{})
			continue
		}
		c := base
		c.Name = UserConnectionName(u.Name)
		c.Pools = groupPools
		if static {
			c.Pools = userPools[u.Name]
		}
		r := remote
		if r.Method == "pubkey" {
			// The IKE identity is known when charon picks the config: an exact match wins.
			r.ID = string(u.Spec.Identity)
		} else {
			r.EAPID = string(u.Spec.Identity)
			c.RemoteAddrs = pinRemoteAddrs
			pins = true
		}
		c.Remote = []Auth{r}
		c.Children = []Child{g.child}
		b.m.Connections = append(b.m.Connections, c)
		b.acceptUser(u, remote.Method, c.Name, statics[u])
	}
	return pins
}

func (b *builder) acceptUser(u *v1alpha1.VPNUser, method, conn string, static netip.Addr) {
	b.acceptUserInGroup(u, method, conn, static, "")
}

func (b *builder) acceptUserInGroup(u *v1alpha1.VPNUser, method, conn string, static netip.Addr, group string) {
	b.res.Users = append(b.res.Users, AcceptedUser{Name: u.Name, Identity: string(u.Spec.Identity), Method: method, Connection: conn,
		MaxSessions: int(u.Spec.EffectiveMaxSessions(&b.gw.Spec)), NTHash: b.hashes[u], Address: static, Group: group})
}

func poolName(p *parsedPool, a netip.Prefix) string {
	if a.Addr().Is4() {
		return modelName("", p.obj.Name, "-ipv4")
	}
	return modelName("", p.obj.Name, "-ipv6")
}
