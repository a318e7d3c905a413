package swan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// poolGroup is the set of MobilePools with one user selector: their clients
// share one connection (or one per user, see mobile) and one child.
type poolGroup struct {
	key   string // canonical selector; "" selects everybody no other group selects
	sel   labels.Selector
	pools []*v1alpha1.MobilePool
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
	switch gw.Spec.ClientAuth.Method {
	case "", v1alpha1.ClientAuthEAPMSCHAPv2:
		return Auth{Method: "eap-mschapv2", EAPID: "%any"}, true
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

// mobile builds the connections, pools and EAP secrets of mobile clients.
//
// Pools with the same user selector form a group. Every user belongs to at
// most one group. The group taking everybody else (no selector, or with local
// users the group of the first pool, since only selected users have secrets)
// gets one connection that accepts any identity. Each user of another group gets a
// connection of its own that names its identity and carries its group's pools;
// charon switches to it after authentication (see selectRemoteAddrs).
func (b *builder) mobile() {
	gw := b.gw
	ike := gw.Spec.IKE
	ikeProps, insecure, err := ikeProposals(ike.Preset, ike.Proposals)
	gwOK := true
	if err != nil {
		b.problem(v1alpha1.ReasonInvalidSpec, KindVPNGateway, gw.Name, "ike proposals: %v", err)
		gwOK = false
	}
	if len(insecure) > 0 && !gw.Spec.AllowInsecureAlgorithms {
		b.problem(v1alpha1.ReasonInsecureAlgorithm, KindVPNGateway, gw.Name, "ike proposals use %s, which RFC 8247 forbids, without allowInsecureAlgorithms", strings.Join(insecure, ", "))
		gwOK = false
	}
	if ike.Version != 0 && ike.Version != 2 {
		b.problem(v1alpha1.ReasonInvalidSpec, KindVPNGateway, gw.Name, "ike.version %d: mobile clients need IKEv2", ike.Version)
		gwOK = false
	}
	// The client CA joins the model only with a mobile side that uses it.
	var remote Auth
	if gwOK {
		remote, gwOK = b.clientAuth()
	}
	method := gw.Spec.ClientAuth.Method
	localUsers := method == "" || method == v1alpha1.ClientAuthEAPMSCHAPv2

	groups := b.poolGroups()
	users := b.validUsers()
	b.assignUsers(groups, users)

	// A group without users serves nobody when only VPNUsers can log in.
	var live []*poolGroup
	for _, g := range groups {
		if len(g.users) == 0 && (localUsers || g.key != "") {
			for _, p := range g.pools {
				what := "its userSelector matches no VPNUser of the gateway"
				switch {
				case g.key == "" && len(users) == 0:
					what = "the gateway has no VPNUser that may log in"
				case g.key == "":
					what = "every VPNUser of the gateway is selected by another pool"
				}
				b.problem(v1alpha1.ReasonPoolUnused, KindMobilePool, p.Name, "%s", what)
			}
			continue
		}
		live = append(live, g)
	}
	if !gwOK {
		return
	}
	statics := b.staticAddresses(live)
	if localUsers {
		// A user whose secret is unusable gets neither a secret nor a connection.
		for _, g := range live {
			g.users = slices.DeleteFunc(g.users, func(u *v1alpha1.VPNUser) bool { return !b.ntlmSecret(u) })
		}
	}

	var catchAll *poolGroup
	for _, g := range live {
		if g.key == "" {
			catchAll = g
		}
	}
	if catchAll == nil && localUsers && len(live) > 0 {
		// Only selected users have secrets, so one group may take "anybody
		// else". It is the group of the first pool by name rather than the
		// largest: a user added to a group must never turn another group's
		// connection into per-user ones (or back), which would reload the
		// connections of everybody in both groups.
		catchAll = live[0]
	}

	lifetime := durationOr(ike.Lifetime, defaultLifetime)
	rekeyT, over := rekey(lifetime, ike.RekeyTime)
	base := Connection{
		Version:       2,
		Proposals:     ikeProps,
		Encap:         ike.ForceEncapsulation,
		Mobike:        ike.MOBIKE == nil || *ike.MOBIKE,
		DPDDelay:      durationOr(ike.DPD.Delay, defaultDPDDelay),
		Fragmentation: fragmentation(ike.Fragmentation),
		SendCert:      "always",
		SendCertReq:   remote.Method == "pubkey" || remote.Method == "eap-tls",
		RekeyTime:     rekeyT,
		OverTime:      over,
		Local:         []Auth{{Method: "pubkey", ID: LocalIdentity(gw), Certs: []string{GatewayCert}}},
	}
	if ike.DPD.Delay != nil && ike.DPD.Delay.Duration == 0 {
		base.DPDDelay = 0
	}
	if ike.ReauthTime != nil {
		base.ReauthTime = ike.ReauthTime.Duration
	}

	pins := false
	for _, g := range live {
		groupPools, userPools := b.pools(g, statics)
		if g == catchAll {
			c := base
			c.Name = MobileConnectionName(g.pools[0].Name)
			c.Pools = groupPools
			c.Remote = []Auth{remote}
			c.Children = []Child{g.child}
			b.m.Connections = append(b.m.Connections, c)
		}
		for _, u := range g.users {
			_, static := statics[u]
			if g == catchAll && !static {
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
		}
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

// poolGroups validates the gateway's pools and groups them by selector.
func (b *builder) poolGroups() []*poolGroup {
	pools := make([]*v1alpha1.MobilePool, 0, len(b.in.Pools))
	for i := range b.in.Pools {
		pools = append(pools, &b.in.Pools[i])
	}
	slices.SortFunc(pools, func(x, y *v1alpha1.MobilePool) int { return strings.Compare(x.Name, y.Name) })

	// Networks clients reach, to keep pool addresses out of them.
	type named struct {
		p    netip.Prefix
		kind string
		name string
	}
	var reached []named
	for _, p := range pools {
		if p.Spec.GatewayRef.Name != b.gw.Name {
			continue
		}
		for _, n := range p.Spec.LocalNetworks {
			if pr, ok := parsePrefix(n); ok {
				reached = append(reached, named{pr, KindMobilePool, p.Name})
			}
		}
	}
	for i := range b.in.Tunnels {
		t := &b.in.Tunnels[i]
		if t.Spec.GatewayRef.Name != b.gw.Name {
			continue
		}
		for _, c := range t.Spec.Children {
			for _, n := range c.LocalNetworks {
				if pr, ok := parsePrefix(n); ok {
					reached = append(reached, named{pr, KindTunnel, t.Name})
				}
			}
		}
	}

	type taken struct {
		p    netip.Prefix
		pool string
	}
	var accepted []taken
	var groups []*poolGroup
	byKey := map[string]*poolGroup{}
pools:
	for _, p := range pools {
		if !b.belongs(p.Spec.GatewayRef, KindMobilePool, p.Name) {
			continue
		}
		var addrs []netip.Prefix
		for _, a := range []v1alpha1.CIDR{p.Spec.Addresses.IPv4, p.Spec.Addresses.IPv6} {
			if a == "" {
				continue
			}
			pr, ok := parsePrefix(a)
			if !ok || pr.Bits() == pr.Addr().BitLen() {
				b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "addresses %q is not a network in CIDR notation", a)
				continue pools
			}
			addrs = append(addrs, pr)
		}
		if len(addrs) == 0 {
			b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "addresses has neither ipv4 nor ipv6")
			continue
		}
		if (len(p.Spec.LocalNetworks) > 0) == p.Spec.FullTunnel {
			b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "set exactly one of localNetworks and fullTunnel")
			continue
		}
		for _, n := range p.Spec.LocalNetworks {
			if _, ok := parsePrefix(n); !ok {
				b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "localNetworks entry %q is not a network in CIDR notation", n)
				continue pools
			}
		}
		for _, a := range addrs {
			for _, r := range reached {
				if a.Overlaps(r.p) {
					b.problem(v1alpha1.ReasonPoolOverlapsLocalNetwork, KindMobilePool, p.Name, "addresses %s overlap local network %s of %s %s", a, r.p, r.kind, r.name)
					continue pools
				}
			}
			for _, t := range accepted {
				if a.Overlaps(t.p) {
					b.problem(v1alpha1.ReasonPoolOverlap, KindMobilePool, p.Name, "addresses %s overlap %s of MobilePool %s", a, t.p, t.pool)
					continue pools
				}
			}
		}
		sel, err := selectorOf(p.Spec.UserSelector)
		if err != nil {
			b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "userSelector: %v", err)
			continue
		}
		esp := p.Spec.ESP
		espProps, insecure, err := espProposals(esp.Preset, esp.Proposals, esp.PFSGroup)
		if err != nil {
			b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "esp proposals: %v", err)
			continue
		}
		if len(insecure) > 0 && !p.Spec.AllowInsecureAlgorithms {
			b.problem(v1alpha1.ReasonInsecureAlgorithm, KindMobilePool, p.Name, "esp uses %s, which RFC 8247 forbids, without allowInsecureAlgorithms", strings.Join(insecure, ", "))
			continue
		}
		life := durationOr(esp.Lifetime, defaultESPLife)
		rk, _ := rekey(life, esp.RekeyTime)
		var ts []string
		if p.Spec.FullTunnel {
			ts = []string{"0.0.0.0/0", "::/0"}
		} else {
			for _, n := range p.Spec.LocalNetworks {
				pr, _ := parsePrefix(n)
				ts = append(ts, pr.String())
			}
		}
		sig := fmt.Sprintf("%v|%v|%v|%v|%v|%v|%q", espProps, life, rk, p.Spec.FullTunnel, dnsSig(p.Spec.DNS), p.Spec.WINSServers, p.Spec.Banner)
		key := selectorKey(p.Spec.UserSelector)
		g := byKey[key]
		if g != nil && g.sig != sig {
			b.problem(v1alpha1.ReasonPoolConflict, KindMobilePool, p.Name, "selects the same users as MobilePool %s but differs in esp, fullTunnel, dns, winsServers or banner", g.pools[0].Name)
			continue
		}
		for _, a := range addrs {
			accepted = append(accepted, taken{a, p.Name})
		}
		if g == nil {
			g = &poolGroup{key: key, sel: sel, sig: sig}
			g.child = Child{
				Name:         sanitize(p.Name),
				ESPProposals: espProps,
				LifeTime:     life,
				RekeyTime:    rk,
				DPDAction:    dpdAction(b.gw.Spec.IKE.DPD.Action),
			}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.pools = append(g.pools, p)
		for _, t := range ts {
			if !slices.Contains(g.child.LocalTS, t) {
				g.child.LocalTS = append(g.child.LocalTS, t)
			}
		}
	}
	return groups
}

func poolName(p *v1alpha1.MobilePool, a netip.Prefix) string {
	if a.Addr().Is4() {
		return sanitize(p.Name) + "-ipv4"
	}
	return sanitize(p.Name) + "-ipv6"
}

// validUsers returns the gateway's users that may log in: enabled, not
// expired, with an identity no other user claims.
func (b *builder) validUsers() []*v1alpha1.VPNUser {
	users := make([]*v1alpha1.VPNUser, 0, len(b.in.Users))
	for i := range b.in.Users {
		users = append(users, &b.in.Users[i])
	}
	slices.SortFunc(users, func(x, y *v1alpha1.VPNUser) int { return strings.Compare(x.Name, y.Name) })
	claims := make(map[string][]string, len(users))
	var mine []*v1alpha1.VPNUser
	for _, u := range users {
		if !b.belongs(u.Spec.GatewayRef, KindVPNUser, u.Name) {
			continue
		}
		if u.Spec.Identity == "" {
			b.problem(v1alpha1.ReasonInvalidSpec, KindVPNUser, u.Name, "identity is empty")
			continue
		}
		if reason, why := userIdentityProblem(string(u.Spec.Identity), LocalIdentity(b.gw)); why != "" {
			b.problem(reason, KindVPNUser, u.Name, "identity %q %s", u.Spec.Identity, why)
			continue
		}
		key := identityKey(string(u.Spec.Identity))
		claims[key] = append(claims[key], u.Name)
		mine = append(mine, u)
	}
	out := mine[:0]
	for _, u := range mine {
		if others := claims[identityKey(string(u.Spec.Identity))]; len(others) > 1 {
			b.problem(v1alpha1.ReasonDuplicateIdentity, KindVPNUser, u.Name, "identity %q is also claimed by VPNUser %s", u.Spec.Identity, strings.Join(slices.DeleteFunc(slices.Clone(others), func(n string) bool { return n == u.Name }), ", "))
			continue
		}
		if u.Spec.Disabled {
			continue
		}
		if u.Spec.ExpiresAt != nil && !b.in.Now.Before(u.Spec.ExpiresAt.Time) {
			continue
		}
		out = append(out, u)
	}
	return out
}

// assignUsers puts every user into the one group whose selector matches it,
// or the group without selector.
func (b *builder) assignUsers(groups []*poolGroup, users []*v1alpha1.VPNUser) {
	var fallback *poolGroup
	for _, g := range groups {
		if g.key == "" {
			fallback = g
		}
	}
	for _, u := range users {
		set := labels.Set(u.Labels)
		var hits []*poolGroup
		for _, g := range groups {
			if g.key != "" && g.sel.Matches(set) {
				hits = append(hits, g)
			}
		}
		switch {
		case len(hits) > 1:
			names := make([]string, len(hits))
			for i, g := range hits {
				names[i] = g.pools[0].Name
			}
			b.problem(v1alpha1.ReasonPoolConflict, KindVPNUser, u.Name, "selected by MobilePools %s, which hand out different addresses; a user can draw from one group of pools only", strings.Join(names, ", "))
		case len(hits) == 1:
			hits[0].users = append(hits[0].users, u)
		case fallback != nil:
			fallback.users = append(fallback.users, u)
		default:
			b.problem(v1alpha1.ReasonNoPool, KindVPNUser, u.Name, "no MobilePool of gateway %s selects the user", b.gw.Name)
		}
	}
}

// staticAddresses validates the users' static addresses: each must be a
// usable address of one of its group's pools and belong to one user only
// (the first by name keeps it). Users failing that are left out.
func (b *builder) staticAddresses(groups []*poolGroup) map[*v1alpha1.VPNUser]netip.Addr {
	out := map[*v1alpha1.VPNUser]netip.Addr{}
	owner := map[netip.Addr]string{}
	for _, g := range groups {
		g.users = slices.DeleteFunc(g.users, func(u *v1alpha1.VPNUser) bool {
			if u.Spec.StaticAddress == "" {
				return false
			}
			a, err := netip.ParseAddr(string(u.Spec.StaticAddress))
			if err != nil {
				b.problem(v1alpha1.ReasonInvalidSpec, KindVPNUser, u.Name, "staticAddress %q is not an IP address", u.Spec.StaticAddress)
				return true
			}
			a = a.Unmap()
			inside := false
			var nets []string
			for _, p := range g.pools {
				for _, c := range []v1alpha1.CIDR{p.Spec.Addresses.IPv4, p.Spec.Addresses.IPv6} {
					if pr, ok := parsePrefix(c); c != "" && ok {
						nets = append(nets, pr.String())
						inside = inside || usable(pr, a)
					}
				}
			}
			if !inside {
				b.problem(v1alpha1.ReasonAddressOutsidePool, KindVPNUser, u.Name, "staticAddress %s is not a usable address of the user's pools (%s of MobilePool %s)", a, strings.Join(nets, ", "), g.pools[0].Name)
				return true
			}
			if o, taken := owner[a]; taken {
				b.problem(v1alpha1.ReasonAddressInUse, KindVPNUser, u.Name, "staticAddress %s is already VPNUser %s's", a, o)
				return true
			}
			owner[a] = u.Name
			out[u] = a
			return false
		})
	}
	return out
}

// usable reports whether charon hands a out from a pool of p: not the
// network address, not the last address.
func usable(p netip.Prefix, a netip.Addr) bool {
	return p.Contains(a) && a != p.Addr() && a != lastAddr(p)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// dynamicRanges are the addresses of p charon may hand to anybody: all
// usable ones but the static addresses (sorted, inside p).
func dynamicRanges(p netip.Prefix, static []netip.Addr) []string {
	var out []string
	start, end := p.Addr().Next(), lastAddr(p).Prev()
	for _, s := range static {
		if start.Less(s) {
			out = append(out, start.String()+"-"+s.Prev().String())
		}
		start = s.Next()
	}
	if !end.Less(start) {
		out = append(out, start.String()+"-"+end.String())
	}
	return out
}

// StaticPoolName is the one-address pool of a user's static address; the
// suffix is one no MobilePool's pool ends in.
func StaticPoolName(user string, a netip.Addr) string {
	if a.Is4() {
		return "static-" + sanitize(user) + "-v4"
	}
	return "static-" + sanitize(user) + "-v6"
}

// ntlmSecret adds the NT hash of a user's password and reports whether it could.
func (b *builder) ntlmSecret(u *v1alpha1.VPNUser) bool {
	ref := u.Spec.PasswordSecretRef
	if ref == nil {
		b.problem(v1alpha1.ReasonUnsupportedAuth, KindVPNUser, u.Name, "gateway %s authenticates with EAP-MSCHAPv2 but the user has no passwordSecretRef", b.gw.Name)
		return false
	}
	hash, ok := b.in.PasswordHashes[SecretKeyRef{ref.Name, ref.Key}]
	switch {
	case ok:
		if len(hash) != ntHashLen {
			b.problem(v1alpha1.ReasonSecretInvalid, KindVPNUser, u.Name, "key %q of Secret %s holds no valid password or NT hash", ref.Key, ref.Name)
			return false
		}
	default:
		v, ok := b.secretValue(*ref, KindVPNUser, u.Name, "passwordSecretRef")
		if !ok {
			return false
		}
		if ref.Key != NTHashKey {
			hash = b.nt.sum(string(v))
		} else if hash, ok = hexHash(string(v)); !ok {
			b.problem(v1alpha1.ReasonSecretInvalid, KindVPNUser, u.Name, "key %q of Secret %s must hold 32 hex digits (an NT hash)", ref.Key, ref.Name)
			return false
		}
	}
	b.m.Secrets = append(b.m.Secrets, Secret{
		Name:   "ntlm-" + sanitize(u.Name),
		Type:   "NTLM",
		Owners: []string{string(u.Spec.Identity)},
		Data:   hash,
	})
	return true
}

func dnsSig(d *v1alpha1.DNSSettings) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%v|%s|%v", d.Servers, d.DefaultDomain, d.SplitDomains)
}

// pools adds the charon pools of a group with their attributes. charon sends
// the attributes of every pool that assigned the client an address: each
// pool carries the DNS servers and split networks of its family, and one
// pool (the group's first IPv4 pool, which every client asks for, else its
// first) the attributes that do not depend on the family. The pools of a
// group agree on those (see poolGroups), so the first pool's spec holds them.
func (b *builder) pools(g *poolGroup, statics map[*v1alpha1.VPNUser]netip.Addr) (group []string, users map[string][]string) {
	users = map[string][]string{}
	spec := &g.pools[0].Spec
	type charonPool struct {
		name   string
		prefix netip.Prefix
	}
	var cps []charonPool
	for _, p := range g.pools {
		for _, a := range []v1alpha1.CIDR{p.Spec.Addresses.IPv4, p.Spec.Addresses.IPv6} {
			if pr, ok := parsePrefix(a); a != "" && ok {
				cps = append(cps, charonPool{poolName(p, pr), pr})
			}
		}
	}
	neutral := 0
	for i, cp := range cps {
		if cp.prefix.Addr().Is4() {
			neutral = i
			break
		}
	}
	var attrs []Attribute
	add := func(key string, vals ...string) {
		if len(vals) > 0 {
			attrs = append(attrs, Attribute{Key: key, Values: vals})
		}
	}
	// A static user's pool list: its own address and the group's pools of
	// the other family.
	familyPools := map[bool][]string{}
	for i, cp := range cps {
		v4 := cp.prefix.Addr().Is4()
		attrs = nil
		var dns []string
		if spec.DNS != nil {
			for _, s := range spec.DNS.Servers {
				if ip, err := netip.ParseAddr(string(s)); err == nil && ip.Is4() == v4 {
					dns = append(dns, ip.String())
				}
			}
		}
		add("dns", dns...)
		if i == neutral {
			var wins []string
			for _, w := range spec.WINSServers {
				wins = append(wins, string(w))
			}
			add("nbns", wins...)
		}
		var split []string
		if !spec.FullTunnel {
			for _, ts := range g.child.LocalTS {
				if pn, err := netip.ParsePrefix(ts); err == nil && pn.Addr().Is4() == v4 {
					split = append(split, ts)
				}
			}
		}
		add("split_include", split...)
		if i == neutral {
			if d := spec.DNS; d != nil {
				var domains []string
				for _, s := range d.SplitDomains {
					domains = append(domains, string(s))
				}
				// RFC 8598 INTERNAL_DNS_DOMAIN: one attribute per domain.
				add("25", domains...)
				if d.DefaultDomain != "" {
					add("28674", string(d.DefaultDomain))
				}
				if len(domains) > 0 {
					// Cisco Unity split DNS: one attribute, a space-separated list.
					add("28675", strings.Join(domains, " "))
				}
			}
			if spec.Banner != "" {
				add("28672", spec.Banner)
			}
		}
		var holes []netip.Addr
		var owners []*v1alpha1.VPNUser
		for _, u := range g.users {
			if a, ok := statics[u]; ok && cp.prefix.Contains(a) {
				holes = append(holes, a)
				owners = append(owners, u)
			}
		}
		if len(holes) == 0 {
			b.m.Pools = append(b.m.Pools, Pool{Name: cp.name, Addrs: cp.prefix.String(), Attributes: slices.Clone(attrs)})
			group = append(group, cp.name)
			familyPools[v4] = append(familyPools[v4], cp.name)
			continue
		}
		slices.SortFunc(holes, func(x, y netip.Addr) int { return x.Compare(y) })
		for _, r := range dynamicRanges(cp.prefix, holes) {
			// Named after the range: charon replaces a pool only while nobody
			// holds a lease from it, so a range that changes with a new static
			// address becomes a new pool and the old one drains.
			name := cp.name + "-" + strings.NewReplacer(".", "_", ":", "_").Replace(r)
			b.m.Pools = append(b.m.Pools, Pool{Name: name, Addrs: r, Attributes: slices.Clone(attrs)})
			group = append(group, name)
			familyPools[v4] = append(familyPools[v4], name)
		}
		for _, u := range owners {
			a := statics[u]
			name := StaticPoolName(u.Name, a)
			b.m.Pools = append(b.m.Pools, Pool{Name: name, Addrs: a.String() + "-" + a.String(), Attributes: slices.Clone(attrs)})
			users[u.Name] = append(users[u.Name], name)
		}
	}
	for _, u := range g.users {
		if a, ok := statics[u]; ok {
			users[u.Name] = append(users[u.Name], familyPools[!a.Is4()]...)
		}
	}
	return group, users
}
