package profile

import (
	"fmt"
	"strings"
	"time"
)

// Swanctl builds a swanctl.conf for a strongSwan client: the gateway's
// proposals as they are, the pool's networks as remote traffic selectors,
// and a virtual IP of every family the pools hand out. The CA travels in
// comment lines marked "#| ", which the header says how to extract.
func Swanctl(in Input) ([]byte, error) {
	if err := Check(in, FormatSwanctl); err != nil {
		return nil, err
	}
	name := swanctlName(in.Gateway)
	caFile := name + "-ca.pem"
	w := &confWriter{}
	w.line(fmt.Sprintf("# swanctl.conf: IKEv2 VPN to %s for %s, from ikegate (gateway %s/%s).", in.Dial, in.Identity, in.Namespace, in.Gateway))
	w.line("# Save the CA at the end: sed -n 's/^#| //p' THIS_FILE > /etc/swanctl/x509ca/" + caFile)
	w.line(fmt.Sprintf("# Then: swanctl --load-all && swanctl --initiate --child %s", name))
	w.open("connections")
	w.open(name)
	w.kv("version", "2")
	w.kv("remote_addrs", in.Dial)
	w.list("vips", in.VirtualIPs)
	w.list("proposals", in.IKEProposals)
	w.kv("mobike", yesNo(in.MOBIKE))
	if in.DPDDelay > 0 {
		w.kv("dpd_delay", seconds(in.DPDDelay))
	}
	w.open("local")
	switch in.Auth {
	case AuthEAP:
		w.kv("auth", "eap-mschapv2")
		w.kv("id", in.Identity)
		w.kv("eap_id", in.Identity)
	case AuthEAPTLS:
		w.kv("auth", "eap-tls")
		w.kv("id", in.Identity)
		w.kv("certs", swanctlName(in.User)+".pem")
	case AuthCertificate:
		w.kv("auth", "pubkey")
		w.kv("id", in.Identity)
		w.kv("certs", swanctlName(in.User)+".pem")
	}
	w.close()
	w.open("remote")
	w.kv("auth", "pubkey")
	w.kv("id", in.RemoteID)
	w.kv("cacerts", caFile)
	w.close()
	w.open("children")
	w.open(name)
	if in.FullTunnel {
		w.list("remote_ts", []string{"0.0.0.0/0", "::/0"})
	} else {
		var ts []string
		for _, n := range in.LocalNetworks {
			ts = append(ts, n.String())
		}
		w.list("remote_ts", ts)
	}
	w.list("esp_proposals", in.ESPProposals)
	if in.ESPLifetime > 0 {
		// Rekeys ahead of the gateway, which rekeys at 90% of the lifetime.
		w.kv("rekey_time", seconds(in.ESPLifetime*8/10))
		w.kv("life_time", seconds(in.ESPLifetime))
	}
	w.kv("dpd_action", "restart")
	w.close()
	w.close()
	w.close()
	w.close()
	if in.Auth == AuthEAP {
		w.open("secrets")
		w.open("eap-" + swanctlName(in.User))
		w.kv("id", in.Identity)
		secret := in.Password
		if secret == "" {
			secret = "<password of " + in.Identity + ">"
		}
		w.kv("secret", secret)
		w.close()
		w.close()
	} else {
		w.line("# Put the user's certificate into x509/" + swanctlName(in.User) + ".pem and its key into private/.")
	}
	w.line("# The gateway's CA:")
	for _, l := range strings.Split(strings.TrimSpace(string(in.CAPEM)), "\n") {
		w.line("#| " + l)
	}
	return []byte(w.b.String()), nil
}

// swanctlName maps a Kubernetes name to a section name (dots split
// swanctl's settings paths).
func swanctlName(s string) string { return strings.ReplaceAll(s, ".", "_") }

type confWriter struct {
	b     strings.Builder
	depth int
}

func (w *confWriter) line(s string) {
	w.b.WriteString(strings.Repeat("    ", w.depth))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *confWriter) open(name string) {
	w.line(name + " {")
	w.depth++
}

func (w *confWriter) close() {
	w.depth--
	w.line("}")
}

func (w *confWriter) kv(k, v string) { w.line(k + " = " + confQuote(v)) }

// list writes a list of values that are tokens (proposals, networks,
// addresses), which need no quotes.
func (w *confWriter) list(k string, vs []string) { w.line(k + " = " + strings.Join(vs, ", ")) }

// confQuote leaves v as it is when strongSwan's settings parser reads it
// back unchanged, and double-quotes it with escapes otherwise.
func confQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, "#{}\"\\=,\n\r\t") && strings.TrimSpace(v) == v {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(v) + `"`
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int64((d+time.Second-1)/time.Second))
}
