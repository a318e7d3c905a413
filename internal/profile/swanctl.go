package profile

import (
	"fmt"
	"github.com/ikegate/ikegate/internal/swan"
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
	name := swan.SectionName(in.Gateway)
	caFile := name + "-ca.pem"
	w := &swan.ConfWriter{}
	w.Line(fmt.Sprintf("# swanctl.conf: IKEv2 VPN to %s for %s, from ikegate (gateway %s/%s).", in.Dial, in.Identity, in.Namespace, in.Gateway))
	w.Line("# Save the CA at the end: sed -n 's/^#| //p' THIS_FILE > /etc/swanctl/x509ca/" + caFile)
	w.Line(fmt.Sprintf("# Then: swanctl --load-all && swanctl --initiate --child %s", name))
	w.Open("connections")
	w.Open(name)
	w.KV("version", swan.Quote("2"))
	w.KV("remote_addrs", swan.Quote(in.Dial))
	w.KV("vips", list(in.VirtualIPs))
	w.KV("proposals", list(in.IKEProposals))
	w.KV("mobike", swan.Quote(yesNo(in.MOBIKE)))
	if in.DPDDelay > 0 {
		w.KV("dpd_delay", swan.Quote(seconds(in.DPDDelay)))
	}
	w.Open("local")
	switch in.Auth {
	case AuthEAP:
		w.KV("auth", swan.Quote("eap-mschapv2"))
		w.KV("id", swan.Quote(in.Identity))
		w.KV("eap_id", swan.Quote(in.Identity))
	case AuthEAPTLS:
		w.KV("auth", swan.Quote("eap-tls"))
		w.KV("id", swan.Quote(in.Identity))
		w.KV("certs", swan.Quote(swan.SectionName(in.User)+".pem"))
	case AuthCertificate:
		w.KV("auth", swan.Quote("pubkey"))
		w.KV("id", swan.Quote(in.Identity))
		w.KV("certs", swan.Quote(swan.SectionName(in.User)+".pem"))
	}
	w.Close()
	w.Open("remote")
	w.KV("auth", swan.Quote("pubkey"))
	w.KV("id", swan.Quote(in.RemoteID))
	w.KV("cacerts", swan.Quote(caFile))
	w.Close()
	w.Open("children")
	w.Open(name)
	if in.FullTunnel {
		w.KV("remote_ts", list([]string{"0.0.0.0/0", "::/0"}))
	} else {
		var ts []string
		for _, n := range in.LocalNetworks {
			ts = append(ts, n.String())
		}
		w.KV("remote_ts", list(ts))
	}
	w.KV("esp_proposals", list(in.ESPProposals))
	if in.ESPLifetime > 0 {
		// Rekeys ahead of the gateway, which rekeys at 90% of the lifetime.
		w.KV("rekey_time", swan.Quote(seconds(in.ESPLifetime*8/10)))
		w.KV("life_time", swan.Quote(seconds(in.ESPLifetime)))
	}
	w.KV("dpd_action", swan.Quote("restart"))
	w.Close()
	w.Close()
	w.Close()
	w.Close()
	if in.Auth == AuthEAP {
		w.Open("secrets")
		w.Open("eap-" + swan.SectionName(in.User))
		w.KV("id", swan.Quote(in.Identity))
		secret := in.Password
		if secret == "" {
			secret = "<password of " + in.Identity + ">"
		}
		w.KV("secret", swan.Quote(secret))
		w.Close()
		w.Close()
	} else {
		w.Line("# Put the user's certificate into x509/" + swan.SectionName(in.User) + ".pem and its key into private/.")
	}
	w.Line("# The gateway's CA:")
	for _, l := range strings.Split(strings.TrimSpace(string(in.CAPEM)), "\n") {
		w.Line("#| " + l)
	}
	return []byte(w.String()), nil
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

// list joins values that are tokens (proposals, networks, addresses),
// which need no quotes.
func list(vs []string) string { return strings.Join(vs, ", ") }
