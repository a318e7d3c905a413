package vicitest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/vici"
)

// listConnSection is the part of a list-conn event the fake can derive from
// what was loaded.
func listConnSection(loaded *govici.Message) *govici.Message {
	m := govici.NewMessage()
	for _, k := range []string{"local_addrs", "remote_addrs"} {
		if l := field[[]string](loaded, k); l != nil {
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
	if ch := field[*govici.Message](loaded, "children"); ch != nil {
		out := govici.NewMessage()
		for _, k := range ch.Keys() {
			c := govici.NewMessage()
			_ = c.Set("mode", strings.ToUpper(orDefault(str(field[*govici.Message](ch, k), "mode"), "tunnel")))
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

// IKESAMessage renders sa the way list-sa and the SA events carry it, with
// its CHILD_SAs when withChildren is set (list-sa does, ike-updown does not).
func IKESAMessage(sa vici.IKESA, withChildren bool) *govici.Message {
	m := fields{govici.NewMessage()}
	m.set("uniqueid", strconv.FormatUint(uint64(sa.UniqueID), 10))
	m.setN("version", sa.Version)
	m.set("state", sa.State)
	m.set("local-host", sa.LocalHost)
	m.setN("local-port", sa.LocalPort)
	m.set("local-id", sa.LocalID)
	m.set("remote-host", sa.RemoteHost)
	m.setN("remote-port", sa.RemotePort)
	m.set("remote-id", sa.RemoteID)
	m.set("remote-eap-id", sa.RemoteEAPID)
	m.set("remote-xauth-id", sa.RemoteXAuthID)
	m.proposal(sa.Proposal)
	if sa.Established > 0 {
		m.set("established", strconv.FormatInt(int64(sa.Established/time.Second), 10))
	}
	m.list("local-vips", sa.LocalVIPs)
	m.list("remote-vips", sa.RemoteVIPs)
	if withChildren && len(sa.Children) > 0 {
		cs := govici.NewMessage()
		for _, c := range sa.Children {
			_ = cs.Set(c.Name+"-"+strconv.FormatUint(uint64(c.UniqueID), 10), ChildSAMessage(c))
		}
		_ = m.Set("child-sas", cs)
	}
	return m.Message
}

// ChildSAMessage renders c the way list-sa and the SA events carry it.
func ChildSAMessage(c vici.ChildSA) *govici.Message {
	m := fields{govici.NewMessage()}
	m.set("name", c.Name)
	m.set("uniqueid", strconv.FormatUint(uint64(c.UniqueID), 10))
	m.set("state", c.State)
	m.set("mode", c.Mode)
	m.proposal(c.Proposal)
	m.set("bytes-in", strconv.FormatUint(c.BytesIn, 10))
	m.set("packets-in", strconv.FormatUint(c.PacketsIn, 10))
	m.set("bytes-out", strconv.FormatUint(c.BytesOut, 10))
	m.set("packets-out", strconv.FormatUint(c.PacketsOut, 10))
	m.list("local-ts", c.LocalTS)
	m.list("remote-ts", c.RemoteTS)
	return m.Message
}

// fields sets only the fields that have a value, as charon leaves out what
// an SA does not have.
type fields struct{ *govici.Message }

func (m fields) set(k, v string) {
	if v != "" {
		_ = m.Set(k, v)
	}
}

func (m fields) setN(k string, v int) {
	if v != 0 {
		_ = m.Set(k, strconv.Itoa(v))
	}
}

func (m fields) list(k string, v []string) {
	if len(v) > 0 {
		_ = m.Set(k, v)
	}
}

func (m fields) proposal(p vici.Proposal) {
	m.set("encr-alg", p.Encr)
	m.setN("encr-keysize", p.EncrKeySize)
	m.set("integ-alg", p.Integ)
	m.setN("integ-keysize", p.IntegKeySize)
	m.set("prf-alg", p.PRF)
	m.set("dh-group", p.DHGroup)
}

// field reads a field of a message, zero when it is missing or of another
// kind, the way vici's parsers do.
func field[T any](m *govici.Message, key string) T {
	v, _ := m.Get(key).(T)
	return v
}

func str(m *govici.Message, key string) string { return field[string](m, key) }

func num(m *govici.Message, key string) int {
	n, _ := strconv.Atoi(str(m, key))
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
