package profile

import (
	"fmt"
	"strings"
)

// NetworkManager builds a shell script that (re)creates a
// NetworkManager-strongswan connection with nmcli; the plugin has no import
// of its own. The CA goes to /etc/ikegate, where charon-nm reads it.
func NetworkManager(in Input) ([]byte, error) {
	if err := Check(in, FormatNetworkManager); err != nil {
		return nil, err
	}
	dir := "/etc/ikegate"
	ca := dir + "/" + in.Namespace + "-" + in.Gateway + "-ca.pem"
	data := [][2]string{
		{"address", in.Dial},
		{"certificate", ca},
		{"remote-identity", in.RemoteID},
		{"local-identity", in.Identity},
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# NetworkManager-strongswan connection: IKEv2 VPN to %s for %s, from ikegate (gateway %s/%s).", in.Dial, in.Identity, in.Namespace, in.Gateway)
	w("# Needs the strongswan plugin of NetworkManager (network-manager-strongswan); run as root.")
	w("set -eu")
	switch in.Auth {
	case AuthEAP:
		data = append(data, [2]string{"method", "eap"}, [2]string{"user", in.Identity})
	case AuthEAPTLS, AuthCertificate:
		method := "cert"
		if in.Auth == AuthEAPTLS {
			method = "eap-tls"
		}
		cert, key := dir+"/"+in.User+"-cert.pem", dir+"/"+in.User+"-key.pem"
		w("# Put the user's certificate into %s and its key into %s.", cert, key)
		data = append(data, [2]string{"method", method}, [2]string{"cert-source", "file"}, [2]string{"usercert", cert}, [2]string{"userkey", key})
	}
	data = append(data,
		[2]string{"virtual", "yes"},
		[2]string{"encap", "no"},
		[2]string{"ipcomp", "no"},
		[2]string{"proposal", "yes"},
		[2]string{"ike", strings.Join(in.IKEProposals, ";")},
		[2]string{"esp", strings.Join(in.ESPProposals, ";")},
	)
	if !in.FullTunnel {
		var ts []string
		for _, n := range in.LocalNetworks {
			ts = append(ts, n.String())
		}
		data = append(data, [2]string{"remote-ts", strings.Join(ts, ";")})
	}
	// 0 keeps a given password with the connection; 2 asks at every connect,
	// the plugin's own default.
	flags := "2"
	if in.Password != "" && in.Auth == AuthEAP {
		flags = "0"
	}
	data = append(data, [2]string{"password-flags", flags})
	var items []string
	for _, kv := range data {
		items = append(items, kv[0]+"="+nmEscape(kv[1]))
	}
	w("")
	w("mkdir -p %s", shQuote(dir))
	w("cat > %s <<'IKEGATE_CA'", shQuote(ca))
	b.WriteString(strings.TrimSpace(string(in.CAPEM)) + "\n")
	w("IKEGATE_CA")
	w("")
	uuid := strings.ToLower(stableUUID(in, "networkmanager"))
	w("nmcli connection delete uuid %s >/dev/null 2>&1 || true", uuid)
	args := []string{"nmcli connection add type vpn vpn-type strongswan", "con-name " + shQuote(in.Name()), "connection.uuid " + uuid, "vpn.data " + shQuote(strings.Join(items, ", "))}
	if flags == "0" {
		args = append(args, "vpn.secrets "+shQuote("password="+nmEscape(in.Password)))
	}
	if !in.FullTunnel {
		// Only the pool's networks go through the tunnel.
		args = append(args, "ipv4.never-default yes", "ipv6.never-default yes")
	}
	w("%s", strings.Join(args, " \\\n    "))
	w("echo %s", shQuote("Connection '"+in.Name()+"' is ready: nmcli connection up uuid "+uuid+" --ask"))
	return []byte(b.String()), nil
}

// nmEscape escapes a value of nmcli's vpn.data list, whose items are split
// at commas and whose backslash escapes.
func nmEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(s)
}

// shQuote makes s one single-quoted shell word.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
