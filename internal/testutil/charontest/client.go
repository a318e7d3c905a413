package charontest

import "strings"

// EAPClient describes a road-warrior client connection: EAP-MSCHAPv2 with a
// password, a virtual IP from the gateway's pool, the gateway authenticated by
// its certificate.
type EAPClient struct {
	// Conn names the connection and its child.
	Conn string
	// Gateway is the address the client dials; RemoteID the identity the
	// gateway's certificate must carry.
	Gateway, RemoteID  string
	Identity, Password string
	// RemoteTS are the networks reached through the tunnel.
	RemoteTS string
	// Proposals and ESPProposals default to AES-GCM-256 with Curve25519.
	Proposals, ESPProposals string
}

// Sections returns the client's entries of a swanctl.conf connections and
// secrets block, for configurations holding several clients.
func (c EAPClient) Sections() (conn, secret string) {
	proposals, esp := c.Proposals, c.ESPProposals
	if proposals == "" {
		proposals = "aes256gcm16-prfsha256-x25519"
	}
	if esp == "" {
		esp = "aes256gcm16"
	}
	conn = `  ` + c.Conn + ` {
    version = 2
    remote_addrs = ` + c.Gateway + `
    vips = 0.0.0.0
    proposals = ` + proposals + `
    local {
      auth = eap-mschapv2
      eap_id = ` + c.Identity + `
    }
    remote {
      auth = pubkey
      id = ` + c.RemoteID + `
    }
    children {
      ` + c.Conn + ` {
        remote_ts = ` + c.RemoteTS + `
        esp_proposals = ` + esp + `
      }
    }
  }
`
	secret = `  eap-` + c.Conn + ` {
    id = ` + c.Identity + `
    secret = ` + c.Password + `
  }
`
	return conn, secret
}

// ClientConf is a whole swanctl.conf for the given clients.
func ClientConf(clients ...EAPClient) string {
	var conns, secrets strings.Builder
	for _, c := range clients {
		conn, secret := c.Sections()
		conns.WriteString(conn)
		secrets.WriteString(secret)
	}
	return "connections {\n" + conns.String() + "}\nsecrets {\n" + secrets.String() + "}\n"
}
