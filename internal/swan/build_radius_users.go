package swan

import (
	"net/netip"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/names"
)

// RADIUSPool is the pool name that makes charon assign the address of the
// Access-Accept (Framed-IP-Address, Framed-IPv6-Address) as the virtual IP:
// eap_radius_provider.c acquire_address answers only for connections
// whose pools name it.
const RADIUSPool = "radius"

// maxClassLen is the longest Class charon's class_group turns into a
// group: eap_radius.c process_class ignores values of 44 bytes or more.
const maxClassLen = 43

// GroupClass is the Class, and the connection's remote group, of the users
// of the pool group whose first pool is pool; static names the family of
// a static address ("4", "6") or is empty. It is parsed by charon as an
// identity (identification_create_from_data): no "@", "=" or address
// form, so it is an FQDN that matches itself only.
func GroupClass(pool, static string) string {
	suffix := ""
	if static != "" {
		suffix = "-static" + static
	}
	return names.Fit("ikegate-"+sanitize(pool)+suffix, maxClassLen, nameHashSep)
}

// StaticConnectionName is the connection of the users of the pool group
// whose first pool is pool with a static address of one family.
func StaticConnectionName(pool, family string) string {
	return modelName("mobile-", pool, "-static"+family)
}

// staticAttrsPoolName is the pool that gives the group's users with a
// static address of one family that family's attributes.
func staticAttrsPoolName(pool, family string) string {
	return modelName("statics-", pool, "-v"+family)
}

// radiusGroupConnections adds the connections of one pool group whose
// users the agent's RADIUS server checks. The server tells charon both
// which connection a user belongs on and a static address: the user's
// Class is a group of the user (EAPRADIUS.ClassGroup), which the
// connection's remote groups require, so charon moves a login to its
// group's connection after EAP (ike_auth.c update_cfg_candidates); and a
// static address is sent as Framed-IP-Address. Whatever the number of
// users, a group has one connection, and one more for each family its
// users have static addresses of; no connection names a user, and no
// connection is needed to ask for the identity first (SelectConnection).
//
// Static users need a connection of their own only for their
// attributes: charon sends the DNS, split and other attributes of the vici
// pools that contain a virtual IP (vici_attribute.c
// create_attribute_enumerator), and the dynamic pools have holes at the
// static addresses. The static connection lists, after "radius" and the
// group's dynamic pools, a pool spanning the family's static addresses
// with the family's attributes. charon asks eap-radius first (see
// EAPRADIUS.render), so it never allocates from that pool for the
// family's request; the other family's comes from the dynamic pools,
// listed before it.
func (b *builder) radiusGroupConnections(g *poolGroup, base Connection, remote Auth, statics map[*v1alpha1.VPNUser]netip.Addr) {
	pool := g.pools[0].obj.Name
	groupPools, _, familyAttrs := b.pools(g, statics)
	add := func(name, class string, pools []string) {
		c := base
		c.Name = name
		c.Pools = pools
		r := remote
		r.Groups = []string{class}
		c.Remote = []Auth{r}
		c.Children = []Child{g.child}
		b.m.Connections = append(b.m.Connections, c)
	}
	// One string each for every user of the group: with 100,000 users a
	// copy per user is megabytes in every holder of the result.
	conn, class := MobileConnectionName(pool), GroupClass(pool, "")
	add(conn, class, groupPools)
	span := map[string][2]netip.Addr{}
	for _, u := range g.users {
		a, static := statics[u]
		if !static {
			b.acceptUserInGroup(u, remote.Method, conn, netip.Addr{}, class)
			continue
		}
		fam := addrFamily(a)
		b.acceptUserInGroup(u, remote.Method, StaticConnectionName(pool, fam), a, GroupClass(pool, fam))
		// Every login of the user gets the address (eap_radius_provider.c
		// keeps one per IKE_SA): a second device would take it from the
		// first, which the agent therefore ends (the oldest session beyond
		// the limit goes). A one-address pool refused the second device
		// its virtual IP instead.
		b.res.Users[len(b.res.Users)-1].MaxSessions = 1
		s, seen := span[fam]
		if !seen || a.Less(s[0]) {
			s[0] = a
		}
		if !seen || s[1].Less(a) {
			s[1] = a
		}
		span[fam] = s
	}
	for _, fam := range []string{"4", "6"} {
		s, ok := span[fam]
		if !ok {
			continue
		}
		attrs := staticAttrsPoolName(pool, fam)
		b.m.Pools = append(b.m.Pools, Pool{Name: attrs, Addrs: s[0].String() + "-" + s[1].String(), Attributes: familyAttrs[fam == "4"]})
		pools := append([]string{RADIUSPool}, groupPools...)
		add(StaticConnectionName(pool, fam), GroupClass(pool, fam), append(pools, attrs))
	}
}

func addrFamily(a netip.Addr) string {
	if a.Is4() {
		return "4"
	}
	return "6"
}
