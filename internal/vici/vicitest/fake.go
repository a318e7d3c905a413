// Package vicitest is for tests only: Fake, an in-memory charon that
// implements vici.Session, and builders of the messages charon sends about
// SAs. Production code never imports it.
package vicitest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/vici"
)

// Fake is an in-memory charon for unit tests: a vici.Session that keeps the
// state the VICI commands package vici uses would change in charon 5.9.8, answers
// queries from it, and records every command it receives.
type Fake struct {
	mu    sync.Mutex
	epoch uint64
	down  bool
	calls []RecordedCall
	fail  map[string]string

	conns       map[string]*govici.Message
	pools       map[string]*fakePool
	shared      map[string]*govici.Message
	keys        map[string]*govici.Message // by key id
	certs       map[string]fakeCert        // by fingerprint
	authorities map[string]*govici.Message
	sas         []vici.IKESA
	nextID      uint32
	subs        []fakeSub
}

type fakePool struct {
	msg    *govici.Message
	base   netip.Addr
	size   int
	online int
}

type fakeCert struct {
	der  []byte
	flag string
}

type fakeSub struct {
	ctx    context.Context
	ch     chan govici.Event
	events []string
}

// RecordedCall is one command a Fake received.
type RecordedCall struct {
	Command string
	Message *govici.Message
}

// Name is the item the call was about: the section name of load-conn,
// load-pool and load-authority, the id of load-shared and unload-*, the name
// of unload-conn/pool/authority; "" otherwise.
func (c RecordedCall) Name() string {
	if c.Message == nil {
		return ""
	}
	for _, k := range []string{"id", "name", "ike-id"} {
		if v := str(c.Message, k); v != "" {
			return v
		}
	}
	switch c.Command {
	case "load-conn", "load-pool", "load-authority":
		if ks := c.Message.Keys(); len(ks) > 0 {
			return ks[0]
		}
	}
	return ""
}

func (c RecordedCall) String() string {
	if n := c.Name(); n != "" {
		return c.Command + " " + n
	}
	return c.Command
}

// IsWrite reports whether a VICI command changes charon's state.
func IsWrite(cmd string) bool {
	return strings.HasPrefix(cmd, "load-") || strings.HasPrefix(cmd, "unload-") ||
		cmd == "clear-creds" || cmd == "terminate" || cmd == "initiate"
}

// NewFake returns an empty running fake charon.
func NewFake() *Fake {
	f := &Fake{epoch: 1, nextID: 1, fail: map[string]string{}}
	f.reset()
	return f
}

func (f *Fake) reset() {
	f.conns = map[string]*govici.Message{}
	f.pools = map[string]*fakePool{}
	f.shared = map[string]*govici.Message{}
	f.keys = map[string]*govici.Message{}
	f.certs = map[string]fakeCert{}
	f.authorities = map[string]*govici.Message{}
	f.sas = nil
}

// Calls returns every command received so far.
func (f *Fake) Calls() []RecordedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]RecordedCall(nil), f.calls...)
}

// Writes returns the commands received so far that change state.
func (f *Fake) Writes() []RecordedCall {
	var out []RecordedCall
	for _, c := range f.Calls() {
		if IsWrite(c.Command) {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the recorded commands.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// FailOn makes cmd fail with errmsg whenever its item (see RecordedCall.Name)
// is name, or always when name is "". An empty errmsg removes the failure.
func (f *Fake) FailOn(cmd, name, errmsg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if errmsg == "" {
		delete(f.fail, cmd+"\x00"+name)
		return
	}
	f.fail[cmd+"\x00"+name] = errmsg
}

// Restart simulates charon restarting: all state is lost, subscriptions end,
// and the next Connect reports a new epoch.
func (f *Fake) Restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.epoch++
	f.closeSubs()
}

// SetDown makes the fake unreachable (every call fails with vici.ErrUnavailable)
// or reachable again, which like a restart starts a new epoch.
func (f *Fake) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if down && !f.down {
		f.closeSubs()
	}
	if !down && f.down {
		f.epoch++
	}
	f.down = down
}

func (f *Fake) closeSubs() {
	for _, s := range f.subs {
		close(s.ch)
	}
	f.subs = nil
}

// AddSA adds a live IKE_SA; its UniqueID is assigned when zero. The returned
// id is the IKE_SA's unique id.
func (f *Fake) AddSA(sa vici.IKESA) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sa.UniqueID == 0 {
		sa.UniqueID = f.nextID
	}
	if sa.UniqueID >= f.nextID {
		f.nextID = sa.UniqueID + 1
	}
	f.sas = append(f.sas, sa)
	return sa.UniqueID
}

// SAs returns the live IKE_SAs.
func (f *Fake) SAs() []vici.IKESA {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vici.IKESA(nil), f.sas...)
}

// SetPoolOnline sets the number of online leases of a loaded pool.
func (f *Fake) SetPoolOnline(name string, online int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.pools[name]; ok {
		p.online = online
	}
}

// Emit raises a VICI event to subscribers registered for its name.
func (f *Fake) Emit(name string, m *govici.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emit(name, m)
}

func (f *Fake) emit(name string, m *govici.Message) {
	ev := govici.Event{Name: name, Message: m, Timestamp: time.Now()}
	for _, s := range f.subs {
		if s.ctx.Err() != nil {
			continue
		}
		for _, n := range s.events {
			if n == name {
				select {
				case s.ch <- ev:
				default: // like govici: never block the daemon side
				}
			}
		}
	}
}

// Conn returns the load-conn section of a loaded connection, or nil.
func (f *Fake) Conn(name string) *govici.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[name]
}

// Pool returns the load-pool section of a loaded pool, or nil.
func (f *Fake) Pool(name string) *govici.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.pools[name]; p != nil {
		return p.msg
	}
	return nil
}

// Shared returns the load-shared request of a loaded shared secret, or nil.
func (f *Fake) Shared(id string) *govici.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shared[id]
}

// Authority returns the load-authority section of a loaded authority, or nil.
func (f *Fake) Authority(name string) *govici.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authorities[name]
}

// CertCount and KeyCount return how many certificates and keys are loaded.
func (f *Fake) CertCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.certs)
}

// KeyCount returns how many private keys are loaded.
func (f *Fake) KeyCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

// Connect implements Session.
func (f *Fake) Connect(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, fmt.Errorf("%w: fake charon is down", vici.ErrUnavailable)
	}
	return f.epoch, nil
}

// Close implements Session.
func (f *Fake) Close() error { return nil }

// Subscribe implements Session.
func (f *Fake) Subscribe(ctx context.Context, events ...string) (<-chan govici.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, fmt.Errorf("%w: fake charon is down", vici.ErrUnavailable)
	}
	ch := make(chan govici.Event, 256)
	f.subs = append(f.subs, fakeSub{ctx: ctx, ch: ch, events: events})
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, s := range f.subs {
			if s.ch == ch {
				close(ch)
				f.subs = append(f.subs[:i], f.subs[i+1:]...)
				return
			}
		}
	}()
	return ch, nil
}

// Stream implements Session.
func (f *Fake) Stream(ctx context.Context, cmd, event string, in *govici.Message) ([]*govici.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, cmd, in); err != nil {
		return nil, err
	}
	want := map[string]string{"list-conns": "list-conn", "list-sas": "list-sa", "list-certs": "list-cert"}
	if w, ok := want[cmd]; !ok || w != event {
		return nil, fmt.Errorf("fake charon: no streamed command %s with event %s", cmd, event)
	}
	switch cmd {
	case "list-conns":
		var out []*govici.Message
		for _, name := range sortedKeys(f.conns) {
			m := govici.NewMessage()
			_ = m.Set(name, listConnSection(f.conns[name]))
			out = append(out, m)
		}
		return out, nil
	case "list-certs":
		var out []*govici.Message
		for _, fp := range sortedKeys(f.certs) {
			c := f.certs[fp]
			m := govici.NewMessage()
			_ = m.Set("type", "X509")
			_ = m.Set("flag", c.flag)
			_ = m.Set("data", string(c.der))
			out = append(out, m)
		}
		return out, nil
	default: // list-sas
		var out []*govici.Message
		for _, sa := range f.sas {
			m := govici.NewMessage()
			_ = m.Set(sa.Name, IKESAMessage(sa, true))
			out = append(out, m)
		}
		return out, nil
	}
}

// begin records a command and applies injected failures. f.mu must be held.
func (f *Fake) begin(ctx context.Context, cmd string, in *govici.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.down {
		return fmt.Errorf("%w: fake charon is down", vici.ErrUnavailable)
	}
	// Client cannot tell govici's refusal to encode from a broken socket.
	if err := vici.WireError(cmd, in); err != nil {
		return fmt.Errorf("%w: %s: %w", vici.ErrUnavailable, cmd, err)
	}
	f.calls = append(f.calls, RecordedCall{Command: cmd, Message: in})
	return nil
}
