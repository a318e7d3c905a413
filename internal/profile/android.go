package profile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// sswan is the strongSwan Android app's profile format (media type
// application/vnd.strongswan.profile), as its VpnProfileImportActivity reads it.
type sswan struct {
	UUID           string       `json:"uuid"`
	Name           string       `json:"name"`
	Type           string       `json:"type"`
	Remote         sswanRemote  `json:"remote"`
	Local          sswanLocal   `json:"local"`
	IKEProposal    string       `json:"ike-proposal"`
	ESPProposal    string       `json:"esp-proposal"`
	SplitTunneling *sswanSubnet `json:"split-tunneling,omitempty"`
}

type sswanRemote struct {
	Addr string `json:"addr"`
	ID   string `json:"id"`
	// Cert is the CA certificate, base64 DER; the app trusts it for this profile.
	Cert string `json:"cert"`
}

type sswanLocal struct {
	EAPID string `json:"eap_id,omitempty"`
	ID    string `json:"id,omitempty"`
	P12   string `json:"p12,omitempty"`
}

type sswanSubnet struct {
	Subnets []string `json:"subnets"`
}

// Android builds the .sswan profile. The app takes one IKE and one ESP
// proposal; the gateway's first ones are those it prefers, and the app,
// strongSwan itself, can express every algorithm in them.
func Android(in Input) ([]byte, error) {
	if err := Check(in, FormatAndroid); err != nil {
		return nil, err
	}
	p := sswan{
		UUID:        strings.ToLower(stableUUID(in, "android")),
		Name:        in.Name(),
		Remote:      sswanRemote{Addr: in.Dial, ID: in.RemoteID, Cert: base64.StdEncoding.EncodeToString(firstDER(in.CAPEM))},
		IKEProposal: in.IKEProposals[0],
		ESPProposal: in.ESPProposals[0],
	}
	switch in.Auth {
	case AuthEAP:
		p.Type = "ikev2-eap"
		p.Local.EAPID = in.Identity
	case AuthEAPTLS:
		p.Type = "ikev2-eap-tls"
		p.Local.ID = in.Identity
	case AuthCertificate:
		p.Type = "ikev2-cert"
		p.Local.ID = in.Identity
	}
	if in.Auth != AuthEAP && len(in.PKCS12) > 0 {
		p.Local.P12 = base64.StdEncoding.EncodeToString(in.PKCS12)
	}
	if !in.FullTunnel {
		p.SplitTunneling = &sswanSubnet{}
		for _, n := range in.LocalNetworks {
			p.SplitTunneling.Subnets = append(p.SplitTunneling.Subnets, n.String())
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
