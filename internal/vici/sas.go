package vici

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	govici "github.com/strongswan/govici/vici"
)

// IKESA is one IKE_SA as charon reports it (list-sas, ike-updown and friends).
type IKESA struct {
	// Name is the connection the IKE_SA was made from.
	Name     string
	UniqueID uint32
	Version  int
	// State is charon's state name: CREATED, CONNECTING, ESTABLISHED,
	// PASSIVE, REKEYING, REKEYED, DELETING, DESTROYING.
	State         string
	LocalHost     string
	LocalPort     int
	LocalID       string
	RemoteHost    string
	RemotePort    int
	RemoteID      string
	RemoteEAPID   string
	RemoteXAuthID string
	Initiator     bool
	InitiatorSPI  string
	ResponderSPI  string
	NATLocal      bool
	NATRemote     bool
	NATFake       bool
	NATAny        bool
	// Proposal is the IKE proposal chosen.
	Proposal Proposal
	// Established is how long the IKE_SA has been up.
	Established time.Duration
	RekeyIn     time.Duration
	ReauthIn    time.Duration
	LocalVIPs   []string
	RemoteVIPs  []string
	Children    []ChildSA
}

// Identity is the identity the peer authenticated with: its EAP or XAuth
// identity when it used one, its IKE identity otherwise.
func (s IKESA) Identity() string {
	switch {
	case s.RemoteEAPID != "":
		return s.RemoteEAPID
	case s.RemoteXAuthID != "":
		return s.RemoteXAuthID
	}
	return s.RemoteID
}

// Proposal is a negotiated set of algorithms.
type Proposal struct {
	Encr         string
	EncrKeySize  int
	Integ        string
	IntegKeySize int
	PRF          string
	DHGroup      string
	ESN          bool
}

// ChildSA is one CHILD_SA of an IKE_SA.
type ChildSA struct {
	// Name is the child configuration's name.
	Name     string
	UniqueID uint32
	ReqID    uint32
	// State is charon's state name: CREATED, ROUTED, INSTALLING, INSTALLED,
	// UPDATING, REKEYING, REKEYED, RETRYING, DELETING, DELETED, DESTROYING.
	State       string
	Mode        string
	Protocol    string
	Encap       bool
	SPIIn       string
	SPIOut      string
	Proposal    Proposal
	BytesIn     uint64
	PacketsIn   uint64
	BytesOut    uint64
	PacketsOut  uint64
	InstallTime time.Duration
	RekeyIn     time.Duration
	LifeIn      time.Duration
	LocalTS     []string
	RemoteTS    []string
}

// ListSAs returns the live IKE_SAs, sorted by unique id. It does not wait for
// IKE_SAs that are busy in an exchange (noblock), so it stays fast under load.
func ListSAs(ctx context.Context, s Session) ([]IKESA, error) {
	req := govici.NewMessage()
	_ = req.Set("noblock", "yes")
	msgs, err := s.Stream(ctx, "list-sas", "list-sa", req)
	if err != nil {
		return nil, fmt.Errorf("listing SAs: %w", err)
	}
	var out []IKESA
	for _, m := range msgs {
		for _, name := range m.Keys() {
			if sec := section(m, name); sec != nil {
				out = append(out, parseIKESA(name, sec))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UniqueID < out[j].UniqueID })
	return out, nil
}

func parseIKESA(name string, m *govici.Message) IKESA {
	sa := IKESA{
		Name:          name,
		UniqueID:      uint32(num(m, "uniqueid")),
		Version:       num(m, "version"),
		State:         str(m, "state"),
		LocalHost:     str(m, "local-host"),
		LocalPort:     num(m, "local-port"),
		LocalID:       str(m, "local-id"),
		RemoteHost:    str(m, "remote-host"),
		RemotePort:    num(m, "remote-port"),
		RemoteID:      str(m, "remote-id"),
		RemoteEAPID:   str(m, "remote-eap-id"),
		RemoteXAuthID: str(m, "remote-xauth-id"),
		Initiator:     yes(m, "initiator"),
		InitiatorSPI:  str(m, "initiator-spi"),
		ResponderSPI:  str(m, "responder-spi"),
		NATLocal:      yes(m, "nat-local"),
		NATRemote:     yes(m, "nat-remote"),
		NATFake:       yes(m, "nat-fake"),
		NATAny:        yes(m, "nat-any"),
		Proposal:      parseProposal(m),
		Established:   secs(m, "established"),
		RekeyIn:       secs(m, "rekey-time"),
		ReauthIn:      secs(m, "reauth-time"),
		LocalVIPs:     list(m, "local-vips"),
		RemoteVIPs:    list(m, "remote-vips"),
	}
	if children := section(m, "child-sas"); children != nil {
		for _, k := range children.Keys() {
			if c := section(children, k); c != nil {
				sa.Children = append(sa.Children, parseChildSA(k, c))
			}
		}
	}
	return sa
}

func parseChildSA(key string, m *govici.Message) ChildSA {
	name := str(m, "name")
	if name == "" {
		name = key
	}
	return ChildSA{
		Name:        name,
		UniqueID:    uint32(num(m, "uniqueid")),
		ReqID:       uint32(num(m, "reqid")),
		State:       str(m, "state"),
		Mode:        str(m, "mode"),
		Protocol:    str(m, "protocol"),
		Encap:       yes(m, "encap"),
		SPIIn:       str(m, "spi-in"),
		SPIOut:      str(m, "spi-out"),
		Proposal:    parseProposal(m),
		BytesIn:     unum(m, "bytes-in"),
		PacketsIn:   unum(m, "packets-in"),
		BytesOut:    unum(m, "bytes-out"),
		PacketsOut:  unum(m, "packets-out"),
		InstallTime: secs(m, "install-time"),
		RekeyIn:     secs(m, "rekey-time"),
		LifeIn:      secs(m, "life-time"),
		LocalTS:     list(m, "local-ts"),
		RemoteTS:    list(m, "remote-ts"),
	}
}

func parseProposal(m *govici.Message) Proposal {
	return Proposal{
		Encr:         str(m, "encr-alg"),
		EncrKeySize:  num(m, "encr-keysize"),
		Integ:        str(m, "integ-alg"),
		IntegKeySize: num(m, "integ-keysize"),
		PRF:          str(m, "prf-alg"),
		DHGroup:      str(m, "dh-group"),
		ESN:          str(m, "esn") == "1",
	}
}

func yes(m *govici.Message, key string) bool { return str(m, key) == "yes" }

func unum(m *govici.Message, key string) uint64 {
	n, _ := strconv.ParseUint(str(m, key), 10, 64)
	return n
}

func secs(m *govici.Message, key string) time.Duration {
	return time.Duration(unum(m, key)) * time.Second
}
