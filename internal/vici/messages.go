package vici

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/swan"
)

// The builders below translate the model into the messages the VICI README
// (strongSwan 5.9.8, src/libcharon/plugins/vici/README.md) and swanctl.conf(5)
// define: durations as seconds, booleans as yes/no, multi-valued settings as
// lists, and certificates inline as PEM data because VICI has no file names.

// msgBuilder collects the first error of a chain of Set calls, so a builder
// reads as the list of keys it sends.
type msgBuilder struct {
	m   *govici.Message
	err error
}

func newMsg() *msgBuilder { return &msgBuilder{m: govici.NewMessage()} }

func (b *msgBuilder) set(key string, v any) {
	if b.err != nil {
		return
	}
	if err := b.m.Set(key, v); err != nil {
		b.err = fmt.Errorf("setting %s: %w", key, err)
	}
}

func (b *msgBuilder) str(key, v string) {
	if v != "" {
		b.set(key, v)
	}
}

func (b *msgBuilder) list(key string, v []string) {
	if len(v) > 0 {
		b.set(key, v)
	}
}

func (b *msgBuilder) boolean(key string, v bool) {
	if v {
		b.set(key, "yes")
	} else {
		b.set(key, "no")
	}
}

func (b *msgBuilder) seconds(key string, d time.Duration) {
	if d > 0 {
		// charon parses plain numbers as seconds; rounding up keeps a
		// sub-second setting from turning into 0 (which means "default").
		b.set(key, strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
}

func (b *msgBuilder) section(key string, sub *msgBuilder) {
	if sub.err != nil && b.err == nil {
		b.err = fmt.Errorf("%s: %w", key, sub.err)
		return
	}
	b.set(key, sub.m)
}

// certIndex looks certificates up by their Model.Certs name.
type certIndex map[string]swan.Cert

func indexCerts(certs []swan.Cert) certIndex {
	idx := make(certIndex, len(certs))
	for _, c := range certs {
		idx[c.Name] = c
	}
	return idx
}

func (idx certIndex) pems(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		c, ok := idx[n]
		if !ok {
			return nil, fmt.Errorf("certificate %q is not in the model", n)
		}
		out = append(out, string(c.PEM))
	}
	return out, nil
}

// connMessage builds the load-conn request for c.
func connMessage(c swan.Connection, certs certIndex) (*govici.Message, error) {
	conn := newMsg()
	if c.Version != 0 {
		conn.set("version", strconv.Itoa(c.Version))
	}
	conn.list("local_addrs", c.LocalAddrs)
	conn.list("remote_addrs", c.RemoteAddrs)
	conn.list("proposals", c.Proposals)
	conn.list("vips", c.Vips)
	conn.list("pools", c.Pools)
	conn.boolean("encap", c.Encap)
	conn.boolean("mobike", c.Mobike)
	conn.boolean("aggressive", c.Aggressive)
	conn.seconds("dpd_delay", c.DPDDelay)
	conn.seconds("dpd_timeout", c.DPDTimeout)
	conn.str("fragmentation", c.Fragmentation)
	conn.str("send_cert", c.SendCert)
	conn.boolean("send_certreq", c.SendCertReq)
	conn.str("unique", c.Unique)
	if c.KeyingTries != 0 {
		// swan.KeyingTriesForever is charon's 0.
		conn.set("keyingtries", strconv.Itoa(max(c.KeyingTries, 0)))
	}
	conn.seconds("rekey_time", c.RekeyTime)
	conn.seconds("reauth_time", c.ReauthTime)
	conn.seconds("over_time", c.OverTime)
	conn.seconds("rand_time", c.RandTime)
	for _, side := range []struct {
		prefix string
		auths  []swan.Auth
	}{{"local", c.Local}, {"remote", c.Remote}} {
		seen := map[string]bool{}
		for _, a := range side.auths {
			key := side.prefix
			if a.Name != "" {
				key += "-" + a.Name
			}
			if seen[key] {
				return nil, fmt.Errorf("connection %s: duplicate auth section %s", c.Name, key)
			}
			seen[key] = true
			s, err := authMessage(a, certs)
			if err != nil {
				return nil, fmt.Errorf("connection %s: %s: %w", c.Name, key, err)
			}
			conn.section(key, s)
		}
	}
	if len(c.Children) > 0 {
		children := newMsg()
		for _, ch := range c.Children {
			children.section(ch.Name, childMessage(ch))
		}
		conn.section("children", children)
	}
	root := newMsg()
	root.section(c.Name, conn)
	if root.err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.Name, root.err)
	}
	return root.m, nil
}

func authMessage(a swan.Auth, certs certIndex) (*msgBuilder, error) {
	s := newMsg()
	s.str("auth", a.Method)
	s.str("id", a.ID)
	s.str("eap_id", a.EAPID)
	s.str("aaa_id", a.AAAID)
	pems, err := certs.pems(a.Certs)
	if err != nil {
		return nil, err
	}
	s.list("certs", pems)
	if pems, err = certs.pems(a.CACerts); err != nil {
		return nil, err
	}
	s.list("cacerts", pems)
	s.list("groups", a.Groups)
	s.list("cert_policy", a.CertPolicy)
	s.str("revocation", a.Revocation)
	s.set("round", strconv.Itoa(a.Round))
	return s, nil
}

func childMessage(c swan.Child) *msgBuilder {
	s := newMsg()
	s.str("mode", c.Mode)
	s.list("local_ts", c.LocalTS)
	s.list("remote_ts", c.RemoteTS)
	s.list("esp_proposals", c.ESPProposals)
	s.seconds("rekey_time", c.RekeyTime)
	s.seconds("life_time", c.LifeTime)
	s.seconds("rand_time", c.RandTime)
	s.str("start_action", c.StartAction)
	s.str("close_action", c.CloseAction)
	s.str("dpd_action", c.DPDAction)
	s.boolean("hostaccess", c.HostAccess)
	return s
}

// poolMessage builds the load-pool request for p. Every attribute value is a
// list item of its own: charon sends one configuration attribute per item.
func poolMessage(p swan.Pool) (*govici.Message, error) {
	pool := newMsg()
	pool.str("addrs", p.Addrs)
	for _, a := range p.Attributes {
		if pool.m.Get(a.Key) != nil {
			return nil, fmt.Errorf("pool %s: attribute %s given twice", p.Name, a.Key)
		}
		pool.set(a.Key, append([]string{}, a.Values...))
	}
	root := newMsg()
	root.section(p.Name, pool)
	if root.err != nil {
		return nil, fmt.Errorf("pool %s: %w", p.Name, root.err)
	}
	return root.m, nil
}

// sharedMessage builds the load-shared request for s. The id makes charon
// replace an earlier secret of the same name and lets unload-shared find it.
func sharedMessage(s swan.Secret) (*govici.Message, error) {
	if len(s.Data) == 0 {
		return nil, fmt.Errorf("secret %s: no data", s.Name)
	}
	m := newMsg()
	m.set("id", s.Name)
	m.set("type", s.Type)
	m.set("data", string(s.Data))
	m.list("owners", s.Owners)
	if m.err != nil {
		return nil, fmt.Errorf("secret %s: %w", s.Name, m.err)
	}
	return m.m, nil
}

// certMessage builds the load-cert request for c. The CA flag is what lets
// charon use the certificate as a trust anchor.
func certMessage(c swan.Cert) (*govici.Message, error) {
	m := newMsg()
	m.set("type", "X509")
	switch strings.ToLower(c.Type) {
	case "", "x509":
		m.set("flag", "NONE")
	case "x509ca":
		m.set("flag", "CA")
	default:
		return nil, fmt.Errorf("certificate %s: unsupported type %q", c.Name, c.Type)
	}
	m.set("data", string(c.PEM))
	return m.m, m.err
}

// keyMessage builds the load-key request for k.
func keyMessage(k swan.PrivateKey) (*govici.Message, error) {
	m := newMsg()
	t := strings.ToLower(k.Type)
	if t == "" {
		t = "any"
	}
	m.set("type", t)
	m.set("data", string(k.PEM))
	return m.m, m.err
}

// authorityMessage builds the load-authority request for a.
func authorityMessage(a swan.Authority, certs certIndex) (*govici.Message, error) {
	pems, err := certs.pems([]string{a.CACert})
	if err != nil {
		return nil, fmt.Errorf("authority %s: %w", a.Name, err)
	}
	s := newMsg()
	s.set("cacert", pems[0])
	s.list("crl_uris", a.CRLURIs)
	s.list("ocsp_uris", a.OCSPURIs)
	root := newMsg()
	root.section(a.Name, s)
	if root.err != nil {
		return nil, fmt.Errorf("authority %s: %w", a.Name, root.err)
	}
	return root.m, nil
}

func nameMessage(key, name string) *govici.Message {
	m := govici.NewMessage()
	_ = m.Set(key, name) // a string value never fails
	return m
}

// digest is a fingerprint of everything a message would send, used to tell
// whether an item changed since it was loaded (charon never returns secrets,
// so the loaded content cannot be read back). It is kept in memory only.
func digest(m *govici.Message) string {
	h := sha256.New()
	var walk func(*govici.Message)
	put := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	walk = func(m *govici.Message) {
		for _, k := range m.Keys() {
			put(k)
			switch v := m.Get(k).(type) {
			case string:
				put("s")
				put(v)
			case []string:
				put("l")
				put(strconv.Itoa(len(v)))
				for _, i := range v {
					put(i)
				}
			case *govici.Message:
				put("{")
				walk(v)
				put("}")
			}
		}
	}
	walk(m)
	return hex.EncodeToString(h.Sum(nil))
}
