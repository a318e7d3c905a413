package vici

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	govici "github.com/strongswan/govici/vici"
)

// Fake is an in-memory charon for unit tests: a Session that keeps the state
// the VICI commands this package uses would change in charon 5.9.8, answers
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
	sas         []IKESA
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

// SetDown makes the fake unreachable (every call fails with ErrUnavailable)
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
func (f *Fake) AddSA(sa IKESA) uint32 {
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
func (f *Fake) SAs() []IKESA {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]IKESA(nil), f.sas...)
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
		return 0, fmt.Errorf("%w: fake charon is down", ErrUnavailable)
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
		return nil, fmt.Errorf("%w: fake charon is down", ErrUnavailable)
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
			_ = m.Set(sa.Name, ikeSAMessage(sa, true))
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
		return fmt.Errorf("%w: fake charon is down", ErrUnavailable)
	}
	// Client cannot tell govici's refusal to encode from a broken socket.
	if err := wireError(cmd, in); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, cmd, err)
	}
	f.calls = append(f.calls, RecordedCall{Command: cmd, Message: in})
	return nil
}

func reply(errmsg string, args ...any) (*govici.Message, error) {
	m := govici.NewMessage()
	if errmsg == "" {
		_ = m.Set("success", "yes")
		return m, nil
	}
	msg := fmt.Sprintf(errmsg, args...)
	_ = m.Set("success", "no")
	_ = m.Set("errmsg", msg)
	return m, fmt.Errorf("vici: command failed: %s", msg)
}

// Call implements Session.
func (f *Fake) Call(ctx context.Context, cmd string, in *govici.Message) (*govici.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, cmd, in); err != nil {
		return nil, err
	}
	if in == nil {
		in = govici.NewMessage()
	}
	rc := RecordedCall{Command: cmd, Message: in}
	for _, key := range []string{cmd + "\x00" + rc.Name(), cmd + "\x00"} {
		if msg, ok := f.fail[key]; ok {
			return reply("%s", msg)
		}
	}
	switch cmd {
	case "version":
		m := govici.NewMessage()
		_ = m.Set("daemon", "charon-fake")
		_ = m.Set("version", "5.9.8")
		return m, nil
	case "load-conn":
		return f.loadNamed(in, f.conns, "connection")
	case "unload-conn":
		name := str(in, "name")
		return unloadFrom(f.conns, name, fmt.Sprintf("unload: connection '%s' not found", name))
	case "get-conns":
		return listOf("conns", f.conns)
	case "load-pool":
		return f.loadPool(in)
	case "unload-pool":
		name := str(in, "name")
		p, ok := f.pools[name]
		switch {
		case !ok:
			return reply("%s not found", name)
		case p.online > 0:
			return reply("%s has online leases, unable to unload", name)
		}
		delete(f.pools, name)
		return reply("")
	case "get-pools":
		m := govici.NewMessage()
		for _, name := range sortedKeys(f.pools) {
			p := f.pools[name]
			s := govici.NewMessage()
			_ = s.Set("base", p.base.String())
			_ = s.Set("size", strconv.Itoa(p.size))
			_ = s.Set("online", strconv.Itoa(p.online))
			_ = s.Set("offline", "0")
			_ = m.Set(name, s)
		}
		return m, nil
	case "load-shared":
		t := strings.ToUpper(str(in, "type"))
		switch t {
		case "IKE", "EAP", "XAUTH", "NTLM", "PPK":
		case "":
			return reply("shared key type missing")
		default:
			return reply("invalid shared key type: %s", str(in, "type"))
		}
		if str(in, "data") == "" {
			return reply("shared key data missing")
		}
		if id := str(in, "id"); id != "" {
			f.shared[id] = in
		}
		return reply("")
	case "unload-shared":
		id := str(in, "id")
		if id == "" {
			return reply("unique identifier missing")
		}
		delete(f.shared, id)
		return reply("")
	case "get-shared":
		return listOf("keys", f.shared)
	case "load-key":
		id, err := keyID([]byte(str(in, "data")))
		if err != nil {
			return reply("parsing %s private key failed", strings.ToUpper(str(in, "type")))
		}
		f.keys[id] = in
		m, _ := reply("")
		_ = m.Set("id", id)
		return m, nil
	case "unload-key":
		return unloadFrom(f.keys, str(in, "id"), "key not found")
	case "get-keys":
		return listOf("keys", f.keys)
	case "load-cert":
		return f.loadCert(in)
	case "load-authority":
		return f.loadNamed(in, f.authorities, "authority")
	case "unload-authority":
		name := str(in, "name")
		return unloadFrom(f.authorities, name, fmt.Sprintf("unloading authority '%s' failed, not found", name))
	case "get-authorities":
		return listOf("authorities", f.authorities)
	case "clear-creds":
		f.shared = map[string]*govici.Message{}
		f.keys = map[string]*govici.Message{}
		f.certs = map[string]fakeCert{}
		return reply("")
	case "terminate":
		return f.terminate(in)
	}
	return nil, fmt.Errorf("vici: unexpected response type: command %s unknown", cmd)
}

func (f *Fake) loadNamed(in *govici.Message, into map[string]*govici.Message, what string) (*govici.Message, error) {
	keys := in.Keys()
	if len(keys) != 1 {
		return reply("expected one %s section, got %d", what, len(keys))
	}
	sec := section(in, keys[0])
	if sec == nil {
		return reply("%s %s is not a section", what, keys[0])
	}
	into[keys[0]] = sec
	return reply("")
}

func (f *Fake) loadPool(in *govici.Message) (*govici.Message, error) {
	keys := in.Keys()
	if len(keys) != 1 || section(in, keys[0]) == nil {
		return reply("expected one pool section")
	}
	name, sec := keys[0], section(in, keys[0])
	base, size, err := poolRange(str(sec, "addrs"))
	if err != nil {
		return reply("invalid pool addrs for %s: %v", name, err)
	}
	if old, ok := f.pools[name]; ok && (old.base != base || old.size != size) && old.online > 0 {
		return reply("vici pool %s has %d online leases, unable to replace", name, old.online)
	} else if ok && old.base == base && old.size == size {
		old.msg = sec
		return reply("")
	}
	f.pools[name] = &fakePool{msg: sec, base: base, size: size}
	return reply("")
}

// poolRange mirrors how charon sizes a pool: a subnet without its network
// and broadcast addresses, or a from-to range.
func poolRange(addrs string) (netip.Addr, int, error) {
	if from, to, ok := strings.Cut(addrs, "-"); ok {
		a, err := netip.ParseAddr(strings.TrimSpace(from))
		if err != nil {
			return netip.Addr{}, 0, err
		}
		b, err := netip.ParseAddr(strings.TrimSpace(to))
		if err != nil {
			return netip.Addr{}, 0, err
		}
		n := 1
		for x := a; x != b && n < 1<<30; x = x.Next() {
			n++
		}
		return a, n, nil
	}
	p, err := netip.ParsePrefix(addrs)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > 30 {
		hostBits = 30
	}
	size := 1 << hostBits
	if p.Addr().Is4() && hostBits >= 2 {
		size -= 2
	}
	return p.Masked().Addr().Next(), size, nil
}

func (f *Fake) loadCert(in *govici.Message) (*govici.Message, error) {
	data := []byte(str(in, "data"))
	if len(data) == 0 {
		return reply("certificate data missing")
	}
	der := data
	if block, _ := pem.Decode(data); block != nil {
		der = block.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return reply("parsing X509 certificate failed")
	}
	flag := "NONE"
	if cert.IsCA {
		flag = "CA"
	} else if str(in, "flag") == "CA" {
		return reply("ca certificate lacks CA basic constraint, rejected")
	}
	fp, _ := certFingerprint(der)
	f.certs[fp] = fakeCert{der: der, flag: flag}
	return reply("")
}

func (f *Fake) terminate(in *govici.Message) (*govici.Message, error) {
	id := uint32(num(in, "ike-id"))
	name := str(in, "ike")
	var keep []IKESA
	matched := 0
	for _, sa := range f.sas {
		if (id != 0 && sa.UniqueID == id) || (name != "" && sa.Name == name) {
			matched++
			down := govici.NewMessage()
			_ = down.Set(sa.Name, ikeSAMessage(sa, false))
			f.emit(string(EventIKEUpDown), down)
			continue
		}
		keep = append(keep, sa)
	}
	f.sas = keep
	m := govici.NewMessage()
	if matched == 0 {
		_ = m.Set("success", "no")
		_ = m.Set("matches", "0")
		_ = m.Set("terminated", "0")
		_ = m.Set("errmsg", "no matching SAs to terminate found")
		return m, fmt.Errorf("vici: command failed: no matching SAs to terminate found")
	}
	_ = m.Set("success", "yes")
	_ = m.Set("matches", strconv.Itoa(matched))
	_ = m.Set("terminated", strconv.Itoa(matched))
	return m, nil
}

// listConnSection is the part of a list-conn event the fake can derive from
// what was loaded.
func listConnSection(loaded *govici.Message) *govici.Message {
	m := govici.NewMessage()
	for _, k := range []string{"local_addrs", "remote_addrs"} {
		if l := list(loaded, k); l != nil {
			_ = m.Set(k, l)
		}
	}
	v := str(loaded, "version")
	switch v {
	case "1":
		v = "IKEv1"
	case "2":
		v = "IKEv2"
	default:
		v = "0"
	}
	_ = m.Set("version", v)
	if ch := section(loaded, "children"); ch != nil {
		out := govici.NewMessage()
		for _, k := range ch.Keys() {
			c := govici.NewMessage()
			_ = c.Set("mode", strings.ToUpper(orDefault(str(section(ch, k), "mode"), "tunnel")))
			_ = out.Set(k, c)
		}
		_ = m.Set("children", out)
	}
	return m
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ikeSAMessage renders sa the way list-sa and the SA events carry it.
func ikeSAMessage(sa IKESA, withChildren bool) *govici.Message {
	m := govici.NewMessage()
	set := func(k, v string) {
		if v != "" {
			_ = m.Set(k, v)
		}
	}
	setN := func(k string, v int) {
		if v != 0 {
			_ = m.Set(k, strconv.Itoa(v))
		}
	}
	set("uniqueid", strconv.FormatUint(uint64(sa.UniqueID), 10))
	setN("version", sa.Version)
	set("state", sa.State)
	set("local-host", sa.LocalHost)
	setN("local-port", sa.LocalPort)
	set("local-id", sa.LocalID)
	set("remote-host", sa.RemoteHost)
	setN("remote-port", sa.RemotePort)
	set("remote-id", sa.RemoteID)
	set("remote-eap-id", sa.RemoteEAPID)
	set("remote-xauth-id", sa.RemoteXAuthID)
	proposalFields(set, setN, sa.Proposal)
	if sa.Established > 0 {
		set("established", strconv.FormatInt(int64(sa.Established/time.Second), 10))
	}
	if len(sa.LocalVIPs) > 0 {
		_ = m.Set("local-vips", sa.LocalVIPs)
	}
	if len(sa.RemoteVIPs) > 0 {
		_ = m.Set("remote-vips", sa.RemoteVIPs)
	}
	if withChildren && len(sa.Children) > 0 {
		cs := govici.NewMessage()
		for _, c := range sa.Children {
			_ = cs.Set(c.Name+"-"+strconv.FormatUint(uint64(c.UniqueID), 10), childSAMessage(c))
		}
		_ = m.Set("child-sas", cs)
	}
	return m
}

func childSAMessage(c ChildSA) *govici.Message {
	m := govici.NewMessage()
	set := func(k, v string) {
		if v != "" {
			_ = m.Set(k, v)
		}
	}
	setN := func(k string, v int) {
		if v != 0 {
			_ = m.Set(k, strconv.Itoa(v))
		}
	}
	set("name", c.Name)
	set("uniqueid", strconv.FormatUint(uint64(c.UniqueID), 10))
	set("state", c.State)
	set("mode", c.Mode)
	proposalFields(set, setN, c.Proposal)
	set("bytes-in", strconv.FormatUint(c.BytesIn, 10))
	set("packets-in", strconv.FormatUint(c.PacketsIn, 10))
	set("bytes-out", strconv.FormatUint(c.BytesOut, 10))
	set("packets-out", strconv.FormatUint(c.PacketsOut, 10))
	if len(c.LocalTS) > 0 {
		_ = m.Set("local-ts", c.LocalTS)
	}
	if len(c.RemoteTS) > 0 {
		_ = m.Set("remote-ts", c.RemoteTS)
	}
	return m
}

func proposalFields(set func(k, v string), setN func(k string, v int), p Proposal) {
	set("encr-alg", p.Encr)
	setN("encr-keysize", p.EncrKeySize)
	set("integ-alg", p.Integ)
	setN("integ-keysize", p.IntegKeySize)
	set("prf-alg", p.PRF)
	set("dh-group", p.DHGroup)
}

// unloadFrom removes name from items, answering as charon does: success, or
// the error charon gives for a missing item.
func unloadFrom[V any](items map[string]V, name, missing string) (*govici.Message, error) {
	if _, ok := items[name]; !ok {
		return reply("%s", missing)
	}
	delete(items, name)
	return reply("")
}

// listOf answers a get-* command: the sorted names under field.
func listOf[V any](field string, items map[string]V) (*govici.Message, error) {
	m := govici.NewMessage()
	_ = m.Set(field, sortedKeys(items))
	return m, nil
}
