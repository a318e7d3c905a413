package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// maxUserChanges is the most users one apply decides alone; a bulk import
// builds the whole gateway, which then costs less than deciding each.
const maxUserChanges = 512

// dirty is what changed since the apply loop last looked: which users,
// which Secrets, whether charon's socket came back, and whether anything
// else did (the gateway, a pool, a tunnel, a timer), or only the state
// file is due. Only a change of users and credentials shards alone takes
// the path of single users; charon coming back alone is served from the
// last apply (restore.go).
type dirty struct {
	mu      sync.Mutex
	users   map[string]struct{}
	secrets map[string]struct{}
	charon  bool
	other   bool
	save    bool
}

type dirtySet struct {
	users, secrets map[string]struct{}
	charon, other  bool
}

func (d *dirty) mark(users, secrets string, other bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case other || (users == "" && secrets == ""):
		// An object of unknown name counts as anything.
		d.other = true
	case users != "":
		if d.users == nil {
			d.users = map[string]struct{}{}
		}
		d.users[users] = struct{}{}
	case secrets != "":
		if d.secrets == nil {
			d.secrets = map[string]struct{}{}
		}
		d.secrets[secrets] = struct{}{}
	}
}

// markCharon records that charon's socket came back.
func (d *dirty) markCharon() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.charon = true
}

// onlyUsers reports whether only users, Secrets, charon's return or the
// state file are dirty.
func (d *dirty) onlyUsers() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.other
}

func (d *dirty) take() dirtySet {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := dirtySet{users: d.users, secrets: d.secrets, charon: d.charon, other: d.other}
	d.users, d.secrets, d.charon, d.other = nil, nil, false, false
	return s
}

// triggers are the stores' handlers' calls into the apply loop.
func (a *Agent) triggers() triggers {
	return triggers{
		other:  a.Trigger,
		user:   func(name string) { a.dirty.mark(name, "", false); a.wake() },
		secret: func(name string) { a.dirty.mark("", name, false); a.wake() },
	}
}

// syncUsers applies a change of single users without building the whole
// gateway: the RADIUS server's users, the session limits, diagnosis's
// view, and the sessions of users no longer served. It reports false when
// the change needs a whole apply (sync), leaving nothing half done.
func (a *Agent) syncUsers(ctx context.Context, d dirtySet) (bool, error) {
	x := a.index
	if x == nil || d.other || a.stores == nil {
		return false, nil
	}
	if len(d.users) == 0 && len(d.secrets) == 0 {
		// A wake-up whose change an earlier pass already took.
		return true, nil
	}
	gw, ok := a.stores.gateways.get(a.opts.Gateway)
	if !ok {
		return false, nil
	}
	for name := range d.secrets {
		if !credentials.IsShard(a.opts.Gateway, name) {
			return false, nil
		}
	}
	// The set is the apply loop's own since take.
	names := d.users
	if names == nil {
		names = map[string]struct{}{}
	}
	values, hashes := a.decoder.Update(a.stores.secrets.list())
	refs, valuesChanged := a.decoder.Changes()
	if valuesChanged {
		return false, nil
	}
	for _, r := range refs {
		for _, n := range x.Users(r) {
			names[n] = struct{}{}
		}
	}
	if len(names) > maxUserChanges {
		return false, nil
	}
	now := a.opts.Now()
	in := swan.UserInputs{PasswordHashes: hashes, Secrets: values, Now: now}
	changes := make([]userChange, 0, len(names))
	for n := range names {
		u, ok := a.stores.users.get(n)
		if !ok || u.Spec.GatewayRef.Name != gw.Name {
			u = nil
		}
		c, ok := x.Change(n, u, in)
		if !ok {
			// Changes already taken live only in the index, which goes.
			a.index = nil
			return false, nil
		}
		changes = append(changes, userChange{UserChange: c, obj: u})
	}
	start := time.Now()
	lost := a.serveChanges(changes, now)
	log := logr.FromContextOrDiscard(ctx)
	for _, c := range changes {
		for _, p := range c.Problems {
			log.V(1).Info("Object left out of the configuration", "problem", p.String())
		}
	}
	if len(changes) > 0 {
		log.V(1).Info("Applied a change of users", "users", len(changes), "revoked", len(lost), "took", time.Since(start).String())
	}
	err := a.endLostSessions(ctx, lost)
	a.scheduleExpiryOf(changes, now)
	a.saveUsers(ctx, changes)
	if err != nil {
		// The retry must look at charon's SAs again: a whole apply does.
		a.index = nil
	}
	return true, err
}

type userChange struct {
	swan.UserChange
	obj *v1alpha1.VPNUser
}

// left is the identity the change stops serving: the user's former one,
// when it is gone or has another; "" when none.
func (c userChange) left() string {
	if b := c.Before; b != nil && (c.After == nil || c.After.Identity != b.Identity) {
		return b.Identity
	}
	return ""
}

// serveChanges makes the RADIUS server, the session limits and diagnosis
// hold the changes, and returns the identities no longer served.
func (a *Agent) serveChanges(changes []userChange, now time.Time) []string {
	var lost []string
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range changes {
		if b := c.left(); b != "" {
			a.users.Delete(b)
			delete(a.allowed, b)
			delete(a.limits.users, b)
			lost = append(lost, b)
		}
		if n := c.After; n != nil {
			a.users.Set(n.Identity, radiusUser(n))
			a.allowed[n.Identity] = true
			a.limits.users[n.Identity] = userLimit{name: n.Name, limit: n.MaxSessions}
		}
		if a.diag != nil {
			a.diag.users.change(c, now)
		}
	}
	a.metrics.radiusUsers.Set(float64(a.users.Len()))
	a.metrics.userChanges.Add(float64(len(changes)))
	if a.opts.OnUsers != nil {
		a.opts.OnUsers(a.users)
	}
	return lost
}

// endLostSessions ends the IKE_SAs of identities no longer served.
func (a *Agent) endLostSessions(ctx context.Context, lost []string) error {
	if len(lost) == 0 {
		return nil
	}
	return a.endDisallowed(ctx)
}

// endDisallowed ends the IKE_SAs of mobile users the last apply and the
// changes of users since no longer allow.
func (a *Agent) endDisallowed(ctx context.Context) error {
	sas, err := vici.ListSAs(ctx, a.opts.VICI)
	if err != nil {
		return err
	}
	a.mu.Lock()
	stale := revoked(sas, a.allowed, a.tunnelConns)
	a.mu.Unlock()
	return a.endSessions(ctx, stale)
}

// change records a user's change in diagnosis's view.
func (b *userBook) change(c userChange, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id, ok := b.byName[c.Name]; ok {
		if b.refs[id].name == c.Name {
			delete(b.refs, id)
		}
		delete(b.byName, c.Name)
	}
	if c.obj != nil {
		b.add(string(c.obj.Spec.Identity), c.obj, now)
	}
	if b.served != nil {
		if c.Before != nil {
			delete(b.served, c.Before.Identity)
		}
		if c.After != nil {
			b.served[c.After.Identity] = true
		}
	}
}

// scheduleExpiry arranges an apply for the moment the next user expires:
// nothing in the API changes then, but the user must be cut off.
func (a *Agent) scheduleExpiry(in swan.Resources) {
	var next time.Time
	for i := range in.Users {
		if at := in.Users[i].Spec.ExpiresAt; at != nil && at.Time.After(in.Now) && (next.IsZero() || at.Time.Before(next)) {
			next = at.Time
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.expiry != nil {
		a.expiry.Stop()
		a.expiry = nil
	}
	a.nextExpiry = next
	if !next.IsZero() {
		a.expiry = time.AfterFunc(next.Sub(in.Now), a.Trigger)
	}
}

// scheduleExpiryOf brings the expiry timer forward for a changed user
// that expires first; a later one is found by the whole apply the timer
// causes.
func (a *Agent) scheduleExpiryOf(changes []userChange, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range changes {
		if c.obj == nil || c.obj.Spec.ExpiresAt == nil || !c.obj.Spec.ExpiresAt.After(now) {
			continue
		}
		at := c.obj.Spec.ExpiresAt.Time
		if !a.nextExpiry.IsZero() && !at.Before(a.nextExpiry) {
			continue
		}
		if a.expiry != nil {
			a.expiry.Stop()
		}
		a.nextExpiry = at
		a.expiry = time.AfterFunc(at.Sub(now), a.Trigger)
	}
}

// saveUsers keeps a change of single users for a restart: appended to
// the state file's journal at once, a revocation too, or in a whole write
// of the file when the journal is long or cannot be written.
func (a *Agent) saveUsers(ctx context.Context, changes []userChange) {
	err := a.saved.record(journalOf(changes), a.users.Len())
	if errors.Is(err, errWholeDue) {
		r := a.lastRADIUS
		r.Users = a.users.Snapshot()
		err = a.saved.save(a.lastModel, a.lastGeneration, r)
	}
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Keeping the applied configuration for a restart failed")
	}
}
