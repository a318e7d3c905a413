package swan

import (
	"slices"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// UserIndex is what a Build decided about each user of a gateway whose
// users the agent's RADIUS server checks, kept so that a change of single
// users is decided without building the whole gateway again: with 100,000
// users a Build takes about half a second, a Change microseconds.
//
// Change runs the same per-user checks as Build (builder.identityOf,
// mayLogIn, groupOf, ntHash), and refuses every change whose outcome could
// depend on or alter more than the one user: a shared identity, a static
// address (the static connections and pools span them), a pool group
// gaining its first user or losing its last (its connection and pools come
// or go), or the gateway's first or last valid user (a pool's PoolUnused
// message names that). For those the caller builds the whole gateway, and
// takes that Build's index.
type UserIndex struct {
	gw     *v1alpha1.VPNGateway
	groups []*poolGroup
	// assigned counts each group's users after assignUsers: a group is
	// live (has connections) while it has one.
	assigned map[*poolGroup]int
	method   string
	// claims counts the users whose identity passed its own checks, by
	// identity key; two or more make each a duplicate.
	claims map[string]int
	// valid counts users that passed the identity checks, claim their
	// identity alone and may log in.
	valid int
	users map[string]*indexedUser
	// byRef names the users whose password is under a Secret's key.
	byRef map[SecretKeyRef][]string
	// problems holds every Problem of the Build that is not about a user.
	problems []Problem
	// noHashes: the index keeps no NT hash and no byRef (DecideOnly).
	noHashes bool
	// names are groupNames' strings.
	names map[*poolGroup][2]string
}

type indexedUser struct {
	key      string // identity key, "" when the identity failed its checks
	group    *poolGroup
	valid    bool
	static   bool
	ref      SecretKeyRef
	hasRef   bool
	accepted *AcceptedUser
	problems []Problem
}

// UserInputs is what a user's verdict depends on besides the gateway and
// its pools.
type UserInputs struct {
	PasswordHashes map[SecretKeyRef][]byte
	Secrets        map[string]map[string][]byte
	Now            time.Time
}

// UserChange is a Change's outcome for one user.
type UserChange struct {
	Name string
	// Before and After are the user's Result.Users entry before and after
	// the change; nil when it was or is not served.
	Before, After *AcceptedUser
	// Problems are the user's problems after the change.
	Problems []Problem
}

// Users names the users whose password is under the Secret's key.
func (x *UserIndex) Users(ref SecretKeyRef) []string { return x.byRef[ref] }

// Change decides the user named name anew; u is its new state, nil when it
// was deleted. It returns false, and changes nothing, when the change needs
// a whole Build.
func (x *UserIndex) Change(name string, u *v1alpha1.VPNUser, in UserInputs) (UserChange, bool) {
	old := x.users[name]
	if old == nil {
		old = &indexedUser{}
	}
	if old.static || (u != nil && u.Spec.StaticAddress != "") {
		return UserChange{}, false
	}
	// The per-user checks read the gateway through b.gw alone.
	b := &builder{in: Resources{Secrets: in.Secrets, PasswordHashes: in.PasswordHashes, Now: in.Now}, gw: x.gw}
	next := &indexedUser{}
	if u != nil {
		next.key, _ = b.identityOf(u)
		if ref := u.Spec.PasswordSecretRef; ref != nil {
			next.ref, next.hasRef = SecretKeyRef{ref.Name, ref.Key}, true
		}
	}
	for _, k := range []string{old.key, next.key} {
		others := x.claims[k]
		if k == old.key {
			others--
		}
		if k != "" && others > 0 {
			return UserChange{}, false
		}
	}
	next.valid = u != nil && next.key != "" && b.mayLogIn(u)
	if next.valid {
		next.group = b.groupOf(x.groups, u)
	}
	if !x.keepsModel(old, next) {
		return UserChange{}, false
	}
	if next.group != nil && b.ntHash(u) {
		conn, class := x.groupNames(next.group)
		a := AcceptedUser{Name: u.Name, Identity: string(u.Spec.Identity), Method: x.method,
			Connection: conn, MaxSessions: int(u.Spec.EffectiveMaxSessions(&x.gw.Spec)),
			NTHash: b.hashes[u], Group: class}
		if x.noHashes {
			a.NTHash = [16]byte{}
		}
		next.accepted = &a
	}
	next.problems = b.problems
	x.commit(name, old, next, u == nil)
	return UserChange{Name: name, Before: old.accepted, After: next.accepted, Problems: next.problems}, true
}

// groupNames are the connection and Class of a group's users that are no
// static ones, made once per group.
func (x *UserIndex) groupNames(g *poolGroup) (conn, class string) {
	n, ok := x.names[g]
	if !ok {
		pool := g.pools[0].obj.Name
		n = [2]string{MobileConnectionName(pool), GroupClass(pool, "")}
		if x.names == nil {
			x.names = map[*poolGroup][2]string{}
		}
		x.names[g] = n
	}
	return n[0], n[1]
}

// keepsModel reports whether replacing old by next leaves every pool
// group's liveness and the gateway's having valid users as they were.
func (x *UserIndex) keepsModel(old, next *indexedUser) bool {
	valid := x.valid
	if old.valid {
		valid--
	}
	if next.valid {
		valid++
	}
	if (x.valid > 0) != (valid > 0) {
		return false
	}
	if old.group == next.group {
		return true
	}
	if old.group != nil && x.assigned[old.group] == 1 {
		return false
	}
	return next.group == nil || x.assigned[next.group] > 0
}

func (x *UserIndex) commit(name string, old, next *indexedUser, deleted bool) {
	if old.key != "" {
		x.claims[old.key]--
		if x.claims[old.key] == 0 {
			delete(x.claims, old.key)
		}
	}
	if next.key != "" {
		x.claims[next.key]++
	}
	if old.valid {
		x.valid--
	}
	if next.valid {
		x.valid++
	}
	if old.group != nil {
		x.assigned[old.group]--
	}
	if next.group != nil {
		x.assigned[next.group]++
	}
	if old.hasRef && !x.noHashes {
		x.unref(old.ref, name)
	}
	if next.hasRef && !x.noHashes {
		x.byRef[next.ref] = append(x.byRef[next.ref], name)
	}
	if deleted {
		delete(x.users, name)
		return
	}
	x.users[name] = next
}

func (x *UserIndex) unref(ref SecretKeyRef, name string) {
	names := slices.DeleteFunc(x.byRef[ref], func(n string) bool { return n == name })
	if len(names) == 0 {
		delete(x.byRef, ref)
		return
	}
	x.byRef[ref] = names
}

// Accepted is every served user, as Result.Users of a Build of the
// current users would list them (unordered).
func (x *UserIndex) Accepted() []AcceptedUser {
	var out []AcceptedUser
	for _, u := range x.users {
		if u.accepted != nil {
			out = append(out, *u.accepted)
		}
	}
	return out
}

// Problems is every problem a Build of the current users would report
// (unordered).
func (x *UserIndex) Problems() []Problem {
	out := append([]Problem(nil), x.problems...)
	for _, u := range x.users {
		out = append(out, u.problems...)
	}
	return out
}

// newUserIndex starts the index of a Build that asked for one.
func newUserIndex(gw *v1alpha1.VPNGateway) *UserIndex {
	return &UserIndex{gw: gw, assigned: map[*poolGroup]int{}, claims: map[string]int{}, users: map[string]*indexedUser{}, byRef: map[SecretKeyRef][]string{}}
}

// claimed records validUsers' claims on identities.
func (x *UserIndex) claimed(claims map[string][]string) {
	for key, names := range claims {
		x.claims[key] = len(names)
		for _, n := range names {
			x.user(n).key = key
		}
	}
}

// assignedTo records validUsers' outcome and assignUsers', before static
// addresses and secrets leave users out of their groups.
func (x *UserIndex) assignedTo(groups []*poolGroup, valid []*v1alpha1.VPNUser, method string) {
	x.groups, x.method, x.valid = groups, method, len(valid)
	for _, u := range valid {
		x.user(u.Name).valid = true
	}
	for _, g := range groups {
		x.assigned[g] = len(g.users)
		for _, u := range g.users {
			x.user(u.Name).group = g
		}
	}
}

// finish records every user's references, static address, entry and
// problems from the Build's result, and releases what the index must not
// keep of the Build.
func (x *UserIndex) finish(users []v1alpha1.VPNUser, res *Result) {
	for i := range users {
		u := &users[i]
		r := x.user(u.Name)
		r.static = u.Spec.StaticAddress != ""
		if ref := u.Spec.PasswordSecretRef; ref != nil {
			r.ref, r.hasRef = SecretKeyRef{ref.Name, ref.Key}, true
			x.byRef[r.ref] = append(x.byRef[r.ref], u.Name)
		}
	}
	for i := range res.Users {
		a := res.Users[i]
		x.user(a.Name).accepted = &a
	}
	for _, p := range res.Problems {
		if p.Kind == KindVPNUser {
			r := x.user(p.Name)
			r.problems = append(r.problems, p)
		} else {
			x.problems = append(x.problems, p)
		}
	}
	for _, g := range x.groups {
		// Only the selector, the first pool's name and identity are read
		// again; the users are the Build's.
		g.users = nil
	}
}

func (x *UserIndex) user(name string) *indexedUser {
	r := x.users[name]
	if r == nil {
		r = &indexedUser{}
		x.users[name] = r
	}
	return r
}

// User is what the index holds of the user named name: its Result.Users
// entry (nil when not served) and its problems. known is false for a user
// the index has never decided.
func (x *UserIndex) User(name string) (accepted *AcceptedUser, problems []Problem, known bool) {
	u := x.users[name]
	if u == nil {
		return nil, nil, false
	}
	return u.accepted, u.problems, true
}

// DecideOnly makes the index keep neither NT hashes nor the users of each
// Secret key (Users then names none), now and after every Change, for a
// holder that decides users but never authenticates them (the manager).
func (x *UserIndex) DecideOnly() {
	x.noHashes = true
	x.byRef = nil
	for _, u := range x.users {
		if u.accepted != nil {
			u.accepted.NTHash = [16]byte{}
		}
	}
}
