package swan

import (
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// validUsers returns the gateway's users that may log in: enabled, not
// expired, with an identity no other user claims.
func (b *builder) validUsers() []*v1alpha1.VPNUser {
	users := make([]*v1alpha1.VPNUser, 0, len(b.in.Users))
	for i := range b.in.Users {
		users = append(users, &b.in.Users[i])
	}
	slices.SortFunc(users, func(x, y *v1alpha1.VPNUser) int { return strings.Compare(x.Name, y.Name) })
	claims := make(map[string][]string, len(users))
	var (
		mine []*v1alpha1.VPNUser
		keys []string
	)
	for _, u := range users {
		key, ok := b.identityOf(u)
		if !ok {
			continue
		}
		claims[key] = append(claims[key], u.Name)
		mine = append(mine, u)
		keys = append(keys, key)
	}
	out := mine[:0]
	for i, u := range mine {
		if others := claims[keys[i]]; len(others) > 1 {
			b.problem(v1alpha1.ReasonDuplicateIdentity, KindVPNUser, u.Name, "identity %q is also claimed by VPNUser %s", u.Spec.Identity, strings.Join(slices.DeleteFunc(slices.Clone(others), func(n string) bool { return n == u.Name }), ", "))
			continue
		}
		if !b.mayLogIn(u) {
			continue
		}
		out = append(out, u)
	}
	if b.index != nil {
		b.index.claimed(claims)
	}
	return out
}

// identityOf checks what a user's identity must be on its own (the gateway
// it names, a literal identity that is not the gateway's), reports what
// fails, and returns the key under which users' identities collide.
func (b *builder) identityOf(u *v1alpha1.VPNUser) (string, bool) {
	if !b.belongs(u.Spec.GatewayRef, KindVPNUser, u.Name) {
		return "", false
	}
	if u.Spec.Identity == "" {
		b.problem(v1alpha1.ReasonInvalidSpec, KindVPNUser, u.Name, "identity is empty")
		return "", false
	}
	if reason, why := userIdentityProblem(string(u.Spec.Identity), LocalIdentity(b.gw)); why != "" {
		b.problem(reason, KindVPNUser, u.Name, "identity %q %s", u.Spec.Identity, why)
		return "", false
	}
	return identityKey(string(u.Spec.Identity)), true
}

// mayLogIn reports whether a user is neither disabled nor expired.
func (b *builder) mayLogIn(u *v1alpha1.VPNUser) bool {
	if u.Spec.Disabled {
		return false
	}
	return u.Spec.ExpiresAt == nil || b.in.Now.Before(u.Spec.ExpiresAt.Time)
}

// assignUsers puts every user into the one group whose selector matches it,
// or the group without selector.
func (b *builder) assignUsers(groups []*poolGroup, users []*v1alpha1.VPNUser) {
	for _, u := range users {
		if g := b.groupOf(groups, u); g != nil {
			g.users = append(g.users, u)
		}
	}
}

// groupOf is the one group whose selector matches the user, or else the
// group without selector; it reports a user that no group or more than one
// selects.
func (b *builder) groupOf(groups []*poolGroup, u *v1alpha1.VPNUser) *poolGroup {
	set := labels.Set(u.Labels)
	var (
		hits     []*poolGroup
		fallback *poolGroup
	)
	for _, g := range groups {
		if g.key == "" {
			fallback = g
		} else if g.sel.Matches(set) {
			hits = append(hits, g)
		}
	}
	switch {
	case len(hits) > 1:
		names := make([]string, len(hits))
		for i, g := range hits {
			names[i] = g.pools[0].obj.Name
		}
		b.problem(v1alpha1.ReasonPoolConflict, KindVPNUser, u.Name, "selected by MobilePools %s, which hand out different addresses; a user can draw from one group of pools only", strings.Join(names, ", "))
		return nil
	case len(hits) == 1:
		return hits[0]
	case fallback != nil:
		return fallback
	default:
		b.problem(v1alpha1.ReasonNoPool, KindVPNUser, u.Name, "no MobilePool of gateway %s selects the user", b.gw.Name)
		return nil
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
				for _, pr := range p.addrs {
					nets = append(nets, pr.String())
					inside = inside || usable(pr, a)
				}
			}
			if !inside {
				b.problem(v1alpha1.ReasonAddressOutsidePool, KindVPNUser, u.Name, "staticAddress %s is not a usable address of the user's pools (%s of MobilePool %s)", a, strings.Join(nets, ", "), g.pools[0].obj.Name)
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

// ntHash records the NT hash of a user's password for the agent's RADIUS
// server and reports whether it could.
func (b *builder) ntHash(u *v1alpha1.VPNUser) bool {
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
	if b.hashes == nil {
		b.hashes = map[*v1alpha1.VPNUser][16]byte{}
	}
	b.hashes[u] = [16]byte(hash)
	return true
}
