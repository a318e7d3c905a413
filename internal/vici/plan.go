package vici

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/swan"
)

// Kind is the kind of item charon holds.
type Kind string

// The kinds, in the order they are loaded: credentials before the
// connections that use them, pools before the connections that name them.
const (
	KindCert      Kind = "cert"
	KindKey       Kind = "key"
	KindAuthority Kind = "authority"
	KindSecret    Kind = "secret"
	KindPool      Kind = "pool"
	KindConn      Kind = "conn"
)

// Ref names one item of the model.
type Ref struct {
	Kind Kind
	Name string
}

func (r Ref) String() string { return string(r.Kind) + " " + r.Name }

// Action is what an Op does to charon.
type Action string

// Actions.
const (
	ActionLoad   Action = "load"
	ActionUnload Action = "unload"
)

// Op is one VICI write.
type Op struct {
	Action Action
	Ref    Ref
	// Command is the VICI command sent.
	Command string

	msg    *govici.Message
	digest string
	// ident is what charon knows the item by when that is not Ref.Name: the
	// key id of a private key, the fingerprint of a certificate.
	ident string
}

func (o Op) String() string {
	return string(o.Action) + " " + o.Ref.String()
}

// desiredItem is one model item translated into the message that loads it.
type desiredItem struct {
	ref    Ref
	cmd    string
	msg    *govici.Message
	digest string
	ident  string
	// broken items could not be translated, or their message could not be
	// sent (WireError): they are neither loaded nor unloaded, so a typo in
	// one item never takes an existing one away. err says why.
	broken bool
	err    error
}

type desired struct {
	// byKind and names hold every kind but secrets.
	byKind map[Kind][]desiredItem
	names  map[Kind]map[string]bool
	// Secrets live in the applier's cache, marked with this Apply's
	// generation; secrets is the model's list, for a stable load order.
	secrets []swan.Secret
	cache   secretCache
	gen     uint64
}

func (d *desired) has(r Ref) bool {
	if r.Kind == KindSecret {
		c := d.cache[r.Name]
		return c != nil && c.gen == d.gen
	}
	return d.names[r.Kind][r.Name]
}

// claim records a name and reports false when it was taken already.
func (d *desired) claim(r Ref) bool {
	names := d.names[r.Kind]
	if names[r.Name] {
		return false
	}
	names[r.Name] = true
	return true
}

// secretCache keeps the translation of every secret across Applies. Secrets
// are the one kind that grows to tens of thousands: translating and hashing
// them all, or even building a set of their names, on every Apply would make
// adding a user cost time in proportion to the users already there.
type secretCache map[string]*cachedSecret

type cachedSecret struct {
	src  swan.Secret
	item desiredItem
	// gen is the last Apply whose model had this secret; index is its
	// position in that model (the first, if the name was given twice).
	gen   uint64
	index int
}

func sameSecret(a, b swan.Secret) bool {
	return a.Name == b.Name && a.Type == b.Type && bytes.Equal(a.Data, b.Data) && slices.Equal(a.Owners, b.Owners)
}

// buildDesired translates the model for the Apply of generation gen. Items
// that cannot be translated or sent are reported as failures and kept as
// broken placeholders. Secrets go into cache, whose entries of earlier
// generations that the model no longer has are dropped.
func buildDesired(m swan.Model, cache secretCache, gen uint64) (*desired, []Failure) {
	d := &desired{
		byKind:  map[Kind][]desiredItem{},
		names:   map[Kind]map[string]bool{},
		secrets: m.Secrets,
		cache:   cache,
		gen:     gen,
	}
	for _, k := range []Kind{KindCert, KindKey, KindAuthority, KindPool, KindConn} {
		d.names[k] = map[string]bool{}
	}
	var failed []Failure
	fail := func(r Ref, err error) { failed = append(failed, Failure{Ref: r, Err: err}) }
	item := func(kind Kind, name, cmd string, msg *govici.Message, ident string, err error) desiredItem {
		it := desiredItem{ref: Ref{kind, name}, cmd: cmd, msg: msg, ident: ident}
		if err == nil {
			if werr := WireError(cmd, msg); werr != nil {
				err = fmt.Errorf("%s: cannot be sent to charon: %w", it.ref, werr)
			}
		}
		if err != nil {
			fail(it.ref, err)
			it.broken, it.err = true, err
		} else {
			it.digest = digest(msg)
		}
		return it
	}
	add := func(kind Kind, name, cmd string, msg *govici.Message, ident string, err error) {
		if !d.claim(Ref{kind, name}) {
			fail(Ref{kind, name}, fmt.Errorf("%s: defined twice", Ref{kind, name}))
			return
		}
		d.byKind[kind] = append(d.byKind[kind], item(kind, name, cmd, msg, ident, err))
	}
	certs := indexCerts(m.Certs)
	for _, c := range m.Certs {
		msg, err := certMessage(c)
		fp := ""
		if err == nil {
			if fp, err = certFingerprint(c.PEM); err != nil {
				err = fmt.Errorf("certificate %s: %w", c.Name, err)
			}
		}
		add(KindCert, c.Name, "load-cert", msg, fp, err)
	}
	for _, k := range m.Keys {
		msg, err := keyMessage(k)
		id := ""
		if err == nil {
			if id, err = KeyID(k.PEM); err != nil {
				err = fmt.Errorf("private key %s: %w", k.Name, err)
			}
		}
		add(KindKey, k.Name, "load-key", msg, id, err)
	}
	for _, a := range m.Authorities {
		msg, err := authorityMessage(a, certs)
		add(KindAuthority, a.Name, "load-authority", msg, "", err)
	}
	for i, s := range m.Secrets {
		c := cache[s.Name]
		switch {
		case c != nil && c.gen == gen:
			fail(Ref{KindSecret, s.Name}, fmt.Errorf("%s: defined twice", Ref{KindSecret, s.Name}))
			continue
		case c == nil || !sameSecret(c.src, s):
			msg, err := sharedMessage(s)
			src := s
			src.Data = bytes.Clone(s.Data)
			src.Owners = slices.Clone(s.Owners)
			c = &cachedSecret{src: src, item: item(KindSecret, s.Name, "load-shared", msg, "", err)}
			cache[s.Name] = c
		case c.item.broken:
			// Unchanged and still untranslatable: report it again.
			fail(c.item.ref, c.item.err)
		}
		c.gen, c.index = gen, i
	}
	for name, c := range cache {
		if c.gen != gen {
			delete(cache, name)
		}
	}
	for _, p := range m.Pools {
		msg, err := poolMessage(p)
		add(KindPool, p.Name, "load-pool", msg, "", err)
	}
	for _, c := range m.Connections {
		msg, err := connMessage(c, certs)
		add(KindConn, c.Name, "load-conn", msg, "", err)
	}
	return d, failed
}

// state is what the applier believes charon holds: presence as charon
// reported it, content as a digest of what this applier loaded ("" when the
// item was there before this applier and its content is unknown).
type state struct {
	named map[Kind]map[string]string // conns, pools, secrets, authorities: name -> digest
	// keys are indexed by key id; name is "" for keys this applier did not load.
	keys map[string]string
	// certFPs are the fingerprints of every certificate charon holds.
	certFPs map[string]bool
}

func newState() *state {
	return &state{
		named: map[Kind]map[string]string{
			KindConn: {}, KindPool: {}, KindSecret: {}, KindAuthority: {},
		},
		keys:    map[string]string{},
		certFPs: map[string]bool{},
	}
}

// syncState rebuilds the state from a fresh inventory, keeping the digests
// remembered for items charon still holds.
func syncState(old *state, inv *Inventory) *state {
	st := newState()
	keep := func(kind Kind, names []string) {
		for _, n := range names {
			st.named[kind][n] = old.named[kind][n]
		}
	}
	keep(KindConn, inv.Conns)
	for _, p := range inv.Pools {
		st.named[KindPool][p.Name] = old.named[KindPool][p.Name]
	}
	keep(KindSecret, inv.Shared)
	keep(KindAuthority, inv.Authorities)
	for _, id := range inv.Keys {
		st.keys[id] = old.keys[id]
	}
	for _, c := range inv.Certs {
		st.certFPs[c.Fingerprint] = true
	}
	return st
}

// plan returns the VICI writes that make charon hold d, given st. Each item
// is written only when it is new or changed, and the credentials of one item
// are never reloaded for another's sake.
//
// Certificates charon cannot unload one by one (strongSwan has no
// unload-cert), so one the model drops stays in charon's memory until charon
// restarts. That trusts nobody: every connection that authenticates peers by
// certificate names the CAs their chains must end in (Build refuses
// clientAuth.method PublicKey or EAPTLS without clientAuth.clientCA, and
// certificate tunnels without peerCARef), charon compares the chain's root
// with those certificates themselves, not their names, and a changed CA
// changes the connections naming it, which are reloaded. A leftover leaf or
// intermediate authenticates nothing on its own.
func plan(d *desired, st *state) []Op {
	var ops []Op
	load := func(it desiredItem) {
		ops = append(ops, Op{Action: ActionLoad, Ref: it.ref, Command: it.cmd, msg: it.msg, digest: it.digest, ident: it.ident})
	}
	unload := func(kind Kind, name, cmd, key, ident string) {
		ops = append(ops, Op{Action: ActionUnload, Ref: Ref{kind, name}, Command: cmd, msg: nameMessage(key, ident), ident: ident})
	}

	for _, it := range d.byKind[KindCert] {
		if !it.broken && !st.certFPs[it.ident] {
			load(it)
		}
	}
	wantKey := map[string]bool{}
	for _, it := range d.byKind[KindKey] {
		if it.broken {
			continue
		}
		wantKey[it.ident] = true
		if _, ok := st.keys[it.ident]; !ok {
			load(it)
		}
	}
	for _, kind := range []Kind{KindAuthority, KindSecret, KindPool, KindConn} {
		items := d.byKind[kind]
		if kind == KindSecret {
			items = changedSecrets(d, st)
		}
		for _, it := range items {
			if it.broken {
				continue
			}
			if dg, ok := st.named[kind][it.ref.Name]; !ok || dg != it.digest {
				load(it)
			}
		}
	}

	// Removals run after every load: a connection that stops naming a pool
	// is replaced before the pool goes, and a removed connection goes before
	// its pool.
	for _, r := range []struct {
		kind     Kind
		cmd, key string
	}{
		{KindConn, "unload-conn", "name"},
		{KindPool, "unload-pool", "name"},
		{KindSecret, "unload-shared", "id"},
		{KindAuthority, "unload-authority", "name"},
	} {
		var gone []string
		for name := range st.named[r.kind] {
			if !d.has(Ref{r.kind, name}) {
				gone = append(gone, name)
			}
		}
		sort.Strings(gone)
		for _, name := range gone {
			unload(r.kind, name, r.cmd, r.key, name)
		}
	}
	for _, id := range sortedKeys(st.keys) {
		if !wantKey[id] && !keyHeldByBroken(d, st.keys[id]) {
			name := st.keys[id]
			if name == "" {
				name = id
			}
			unload(KindKey, name, "unload-key", "id", id)
		}
	}
	return ops
}

// changedSecrets are the model's secrets, in its order, that charon does not
// hold with their current content.
func changedSecrets(d *desired, st *state) []desiredItem {
	var items []desiredItem
	for i, s := range d.secrets {
		if c := d.cache[s.Name]; c != nil && c.index == i {
			if dg, ok := st.named[KindSecret][s.Name]; !ok || dg != c.item.digest {
				items = append(items, c.item)
			}
		}
	}
	return items
}

// keyHeldByBroken reports whether a loaded key belongs to a model key that
// could not be translated this time (so must not be unloaded).
func keyHeldByBroken(d *desired, name string) bool {
	if name == "" {
		return false
	}
	for _, it := range d.byKind[KindKey] {
		if it.ref.Name == name && it.broken {
			return true
		}
	}
	return false
}

// adopt takes keys of the model that charon holds already (recognised by
// content after a restart of the applier) as loaded by this applier, so that
// removing them later is noticed.
func (st *state) adopt(d *desired) {
	for _, it := range d.byKind[KindKey] {
		if name, ok := st.keys[it.ident]; ok && name == "" && !it.broken {
			st.keys[it.ident] = it.ref.Name
		}
	}
}

// applied records a successful op in st.
func (st *state) applied(op Op) {
	switch op.Action {
	case ActionLoad:
		switch op.Ref.Kind {
		case KindCert:
			st.certFPs[op.ident] = true
		case KindKey:
			st.keys[op.ident] = op.Ref.Name
		default:
			st.named[op.Ref.Kind][op.Ref.Name] = op.digest
		}
	case ActionUnload:
		switch op.Ref.Kind {
		case KindKey:
			delete(st.keys, op.ident)
		default:
			delete(st.named[op.Ref.Kind], op.Ref.Name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
