package vicitest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/vici"
)

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
		id, err := vici.KeyID([]byte(str(in, "data")))
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
	case "reload-settings":
		// charon re-reads strongswan.conf (the agent's RADIUS servers);
		// the fake has none to read, and the call is recorded.
		return reply("")
	}
	return nil, fmt.Errorf("vici: unexpected response type: command %s unknown", cmd)
}

func (f *Fake) loadNamed(in *govici.Message, into map[string]*govici.Message, what string) (*govici.Message, error) {
	keys := in.Keys()
	if len(keys) != 1 {
		return reply("expected one %s section, got %d", what, len(keys))
	}
	sec := field[*govici.Message](in, keys[0])
	if sec == nil {
		return reply("%s %s is not a section", what, keys[0])
	}
	into[keys[0]] = sec
	return reply("")
}

func (f *Fake) loadPool(in *govici.Message) (*govici.Message, error) {
	keys := in.Keys()
	if len(keys) != 1 || field[*govici.Message](in, keys[0]) == nil {
		return reply("expected one pool section")
	}
	name, sec := keys[0], field[*govici.Message](in, keys[0])
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
	// Keyed by fingerprint, so loading a certificate twice holds it once.
	sum := sha256.Sum256(der)
	f.certs[hex.EncodeToString(sum[:])] = fakeCert{der: der, flag: flag}
	return reply("")
}

func (f *Fake) terminate(in *govici.Message) (*govici.Message, error) {
	id := uint32(num(in, "ike-id"))
	name := str(in, "ike")
	var keep []vici.IKESA
	matched := 0
	for _, sa := range f.sas {
		if (id != 0 && sa.UniqueID == id) || (name != "" && sa.Name == name) {
			matched++
			down := govici.NewMessage()
			_ = down.Set(sa.Name, IKESAMessage(sa, false))
			f.emit(string(vici.EventIKEUpDown), down)
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
