package swan

import (
	"encoding/hex"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RenderOptions control what Render prints.
type RenderOptions struct {
	// ShowSecrets prints shared secrets (NT hashes, PSKs) instead of <redacted>.
	// Only a file that charon loads needs them; previews and logs must not.
	ShowSecrets bool
}

// Redacted stands in for every secret unless RenderOptions.ShowSecrets is set.
const Redacted = "<redacted>"

// Credential directories of a swanctl directory, relative to swanctl.conf.
const (
	DirX509    = "x509"
	DirX509CA  = "x509ca"
	DirPrivate = "private"
)

// Render prints m as swanctl.conf. The text depends only on m and opts, one
// setting per line (swanctl refuses several settings on one line).
// Certificates and keys are referenced by the file names Files returns.
func Render(m Model, opts RenderOptions) string {
	w := &swanctlWriter{}
	w.b.Grow(256 + 160*len(m.Secrets) + 1024*len(m.Connections))
	w.comment("swanctl.conf rendered by ikegate")
	if len(m.Connections) > 0 {
		w.open("connections")
		for i := range m.Connections {
			renderConnection(w, &m.Connections[i])
		}
		w.close()
	}
	if len(m.Pools) > 0 {
		w.open("pools")
		for _, p := range m.Pools {
			w.open(SectionName(p.Name))
			w.kv("addrs", p.Addrs)
			for _, a := range p.Attributes {
				if slices.ContainsFunc(a.Values, func(v string) bool { return strings.Contains(v, ",") }) {
					w.comment("swanctl splits this value at its commas; over VICI it is sent whole")
				}
				w.list(a.Key, a.Values)
			}
			w.close()
		}
		w.close()
	}
	if len(m.Authorities) > 0 {
		w.open("authorities")
		for _, a := range m.Authorities {
			w.open(SectionName(a.Name))
			if a.CACert != "" {
				w.kv("cacert", CertFile(a.CACert))
			}
			w.list("crl_uris", a.CRLURIs)
			w.list("ocsp_uris", a.OCSPURIs)
			w.close()
		}
		w.close()
	}
	if len(m.Secrets) > 0 {
		w.open("secrets")
		for _, s := range m.Secrets {
			renderSecret(w, s, opts)
		}
		w.close()
	}
	return w.b.String()
}

// CertFile is the file name a certificate named name has in its credential
// directory; the same name is how connections reference it.
func CertFile(name string) string { return SectionName(name) + ".pem" }

// Files returns the credential files swanctl --load-all reads beside
// swanctl.conf, keyed by their path relative to the swanctl directory.
// Entries without PEM data (placeholders in an offline preview) have no file.
func Files(m Model) map[string][]byte {
	files := make(map[string][]byte, len(m.Certs)+len(m.Keys))
	for _, c := range m.Certs {
		if len(c.PEM) == 0 {
			continue
		}
		dir := DirX509
		if c.Type == "x509ca" {
			dir = DirX509CA
		}
		files[path.Join(dir, CertFile(c.Name))] = c.PEM
	}
	for _, k := range m.Keys {
		if len(k.PEM) == 0 {
			continue
		}
		// private/ takes keys of every type (PKCS#1, SEC1, PKCS#8).
		files[path.Join(DirPrivate, CertFile(k.Name))] = k.PEM
	}
	return files
}

// SectionName turns a model name into a swanctl section name. swanctl looks
// settings up by dotted paths, so a dot inside a section name would split it;
// names from Kubernetes objects contain dots but never underscores, which
// keeps the mapping one to one.
func SectionName(name string) string {
	if !strings.ContainsAny(name, ". \t{}=#\"") {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		switch r {
		case '.', ' ', '\t', '{', '}', '=', '#', '"':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func renderConnection(w *swanctlWriter, c *Connection) {
	w.open(SectionName(c.Name))
	w.kv("version", strconv.Itoa(c.Version))
	w.list("local_addrs", c.LocalAddrs)
	w.list("remote_addrs", c.RemoteAddrs)
	w.list("proposals", c.Proposals)
	w.list("vips", c.Vips)
	w.list("pools", sectionNames(c.Pools))
	if c.Encap {
		w.kv("encap", "yes")
	}
	// charon's default is yes, so the model's false must be spelled out.
	w.kv("mobike", yesNo2(c.Mobike))
	if c.Aggressive {
		w.kv("aggressive", "yes")
	}
	w.duration("dpd_delay", c.DPDDelay)
	w.duration("dpd_timeout", c.DPDTimeout)
	w.opt("fragmentation", c.Fragmentation)
	w.opt("send_cert", c.SendCert)
	w.kv("send_certreq", yesNo2(c.SendCertReq))
	w.opt("unique", c.Unique)
	if c.KeyingTries != 0 {
		w.kv("keyingtries", strconv.Itoa(max(c.KeyingTries, 0)))
	}
	w.duration("rekey_time", c.RekeyTime)
	w.duration("reauth_time", c.ReauthTime)
	w.duration("over_time", c.OverTime)
	w.duration("rand_time", c.RandTime)
	renderAuths(w, "local", c.Local)
	renderAuths(w, "remote", c.Remote)
	if len(c.Children) > 0 {
		w.open("children")
		for _, ch := range c.Children {
			w.open(SectionName(ch.Name))
			w.opt("mode", ch.Mode)
			w.list("local_ts", ch.LocalTS)
			w.list("remote_ts", ch.RemoteTS)
			w.list("esp_proposals", ch.ESPProposals)
			w.duration("rekey_time", ch.RekeyTime)
			w.duration("life_time", ch.LifeTime)
			w.duration("rand_time", ch.RandTime)
			w.opt("start_action", ch.StartAction)
			w.opt("close_action", ch.CloseAction)
			w.opt("dpd_action", ch.DPDAction)
			if ch.HostAccess {
				w.kv("hostaccess", "yes")
			}
			w.close()
		}
		w.close()
	}
	w.close()
}

func renderAuths(w *swanctlWriter, side string, auths []Auth) {
	for _, a := range auths {
		name := side
		if a.Name != "" {
			name += "-" + a.Name
		}
		w.open(SectionName(name))
		if a.Round > 0 {
			w.kv("round", strconv.Itoa(a.Round))
		}
		w.opt("auth", a.Method)
		w.opt("id", a.ID)
		w.opt("eap_id", a.EAPID)
		w.opt("aaa_id", a.AAAID)
		w.list("certs", certFiles(a.Certs))
		w.list("cacerts", certFiles(a.CACerts))
		w.list("groups", a.Groups)
		w.list("cert_policy", a.CertPolicy)
		w.opt("revocation", a.Revocation)
		w.close()
	}
}

// secretPrefix is the section prefix swanctl derives a secret's type from.
var secretPrefix = map[string]string{
	"EAP":   "eap",
	"NTLM":  "ntlm",
	"IKE":   "ike",
	"PPK":   "ppk",
	"XAUTH": "xauth",
}

// SecretSection is the swanctl section of a secret: its Name, prefixed with
// the type's section prefix unless it already starts with it.
func SecretSection(s Secret) string {
	name := SectionName(s.Name)
	p := secretPrefix[s.Type]
	if p == "" {
		p = strings.ToLower(s.Type)
	}
	if strings.HasPrefix(name, p+"-") {
		return name
	}
	return p + "-" + name
}

func renderSecret(w *swanctlWriter, s Secret, opts RenderOptions) {
	w.open(SecretSection(s))
	switch {
	case len(s.Owners) == 1 && s.Type != "IKE":
		w.kv("id", s.Owners[0])
	default:
		// IKE PSKs are owned by both ends, so they are always numbered.
		for i, o := range s.Owners {
			w.kv("id-"+strconv.Itoa(i+1), o)
		}
	}
	secret := Redacted
	if opts.ShowSecrets {
		// Hex keeps any byte (NT hashes are binary) on one line unescaped.
		secret = "0x" + hex.EncodeToString(s.Data)
	}
	w.line("secret = " + secret)
	w.close()
}

func certFiles(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = CertFile(n)
	}
	return out
}

func sectionNames(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = SectionName(n)
	}
	return out
}

func yesNo2(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// swanctlWriter writes swanctl.conf with two-space indentation.
type swanctlWriter struct {
	b     strings.Builder
	depth int
}

func (w *swanctlWriter) indent() {
	for range w.depth {
		w.b.WriteString("  ")
	}
}

func (w *swanctlWriter) line(s string) {
	w.indent()
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *swanctlWriter) comment(s string) { w.line("# " + s) }

func (w *swanctlWriter) open(name string) {
	w.indent()
	w.b.WriteString(name)
	w.b.WriteString(" {\n")
	w.depth++
}

func (w *swanctlWriter) close() {
	w.depth--
	w.line("}")
}

func (w *swanctlWriter) kv(k, v string) {
	w.indent()
	w.b.WriteString(k)
	w.b.WriteString(" = ")
	w.b.WriteString(quote(v))
	w.b.WriteByte('\n')
}

func (w *swanctlWriter) opt(k, v string) {
	if v != "" {
		w.kv(k, v)
	}
}

// list writes a comma-separated list; swanctl splits list settings at commas,
// so every element becomes one value.
func (w *swanctlWriter) list(k string, vs []string) {
	if len(vs) == 0 {
		return
	}
	w.indent()
	w.b.WriteString(k)
	w.b.WriteString(" = ")
	for i, v := range vs {
		if i > 0 {
			w.b.WriteString(", ")
		}
		w.b.WriteString(quote(v))
	}
	w.b.WriteByte('\n')
}

func (w *swanctlWriter) duration(k string, d time.Duration) {
	if d > 0 {
		w.kv(k, strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)+"s")
	}
}

// quote returns v unchanged when the settings parser reads it back as is,
// and as a double-quoted string with escapes otherwise (comment and section
// characters, surrounding blanks, line breaks, commas inside one value).
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, "#{}\"\\,=\n\r\t") && strings.TrimSpace(v) == v {
		return v
	}
	return confString(v)
}
