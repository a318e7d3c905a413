package swan

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// MaxTunnelPairs bounds the local x remote network pairs of a Tunnel's
// children, as the API does: charon installs policies, and the firewall
// rules, for each pair.
const MaxTunnelPairs = 1024

// parsedTunnel is a Tunnel whose spec and credentials are valid, built but
// not yet part of the model: whether it is served depends on the pools
// (see admit).
type parsedTunnel struct {
	obj  *v1alpha1.Tunnel
	conn Connection
	// extra holds the secrets and certificates the connection needs.
	extra    Model
	children []AcceptedChild
}

// parseTunnels builds one connection per site-to-site Tunnel of the gateway.
func (b *builder) parseTunnels() []*parsedTunnel {
	var out []*parsedTunnel
	for i := range b.in.Tunnels {
		t := &b.in.Tunnels[i]
		if !b.belongs(t.Spec.GatewayRef, KindTunnel, t.Name) {
			continue
		}
		// Credentials go to a scratch model first so a tunnel that fails
		// later leaves nothing behind.
		saved := b.m
		b.m = Model{}
		c, children, ok := b.tunnel(t)
		extra := b.m
		b.m = saved
		if ok {
			out = append(out, &parsedTunnel{obj: t, conn: c, extra: extra, children: children})
		}
	}
	return out
}

// commitTunnels adds accepted tunnels to the model and the result.
func (b *builder) commitTunnels(ts []*parsedTunnel) {
	for _, t := range ts {
		b.m.Connections = append(b.m.Connections, t.conn)
		b.m.Secrets = append(b.m.Secrets, t.extra.Secrets...)
		b.m.Certs = append(b.m.Certs, t.extra.Certs...)
		b.res.Tunnels = append(b.res.Tunnels, AcceptedTunnel{Name: t.obj.Name, Connection: t.conn.Name, Children: t.children})
	}
}

func (b *builder) tunnel(t *v1alpha1.Tunnel) (Connection, []AcceptedChild, bool) {
	spec := &t.Spec
	version := int(spec.IKEVersion)
	if version == 0 {
		version = 2
	}
	if version != 1 && version != 2 {
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "ikeVersion %d is neither 1 nor 2", spec.IKEVersion)
		return Connection{}, nil, false
	}
	if len(spec.Remote.Addresses) == 0 {
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "remote.addresses is empty")
		return Connection{}, nil, false
	}
	if len(spec.Children) == 0 {
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "children is empty")
		return Connection{}, nil, false
	}
	ikeProps, err := ikeProposals(spec.IKE.Preset, spec.IKE.Proposals)
	if err != nil {
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "ike proposals: %v", err)
		return Connection{}, nil, false
	}
	if version == 1 {
		if ikeProps = withoutAEAD(ikeProps); len(ikeProps) == 0 {
			b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "ikeVersion 1 has no AEAD ciphers (AES-GCM, ChaCha20-Poly1305) for IKE, and the IKE proposals offer nothing else; use ike.preset Compatible or ike.proposals with AES and an integrity algorithm")
			return Connection{}, nil, false
		}
	}
	all := slices.Clone(ikeProps)
	espProps := make(map[string][]string, len(spec.Children))
	for _, ch := range spec.Children {
		props, err := espProposals(ch.ESP.Preset, ch.ESP.Proposals, ch.ESP.PFSGroup)
		if err != nil {
			b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "child %s: esp proposals: %v", ch.Name, err)
			return Connection{}, nil, false
		}
		espProps[ch.Name] = props
		all = append(all, props...)
	}
	if msg := algorithmPolicy("proposals", all, spec.AllowInsecureAlgorithms); msg != "" {
		b.problem(v1alpha1.ReasonInsecureAlgorithm, KindTunnel, t.Name, "%s", msg)
		return Connection{}, nil, false
	}

	localID := string(spec.LocalIdentity)
	if localID == "" {
		localID = LocalIdentity(b.gw)
	}
	remoteID := string(spec.Remote.Identity)
	if remoteID == "" {
		remoteID = spec.Remote.Addresses[0]
	}
	local := Auth{ID: localID}
	remote := Auth{ID: remoteID}
	switch a := spec.Auth; {
	case a.PSK != nil && a.Certificate == nil:
		v, ok := b.secretValue(a.PSK.SecretRef, KindTunnel, t.Name, "auth.psk.secretRef")
		if !ok {
			return Connection{}, nil, false
		}
		local.Method, remote.Method = "psk", "psk"
		b.m.Secrets = append(b.m.Secrets, Secret{
			Name:   modelName("ike-tunnel-", t.Name, ""),
			Type:   "IKE",
			Owners: []string{localID, remoteID},
			Data:   v,
		})
	case a.Certificate != nil && a.PSK == nil:
		cas, ok := b.caBundle(a.Certificate.PeerCARef, modelName("tunnel-", t.Name, "-ca"), KindTunnel, t.Name, "auth.certificate.peerCARef")
		if !ok {
			return Connection{}, nil, false
		}
		local.Method, remote.Method = "pubkey", "pubkey"
		local.Certs = []string{GatewayCert}
		remote.CACerts = cas
	default:
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "auth needs exactly one of psk and certificate")
		return Connection{}, nil, false
	}

	localAddrs, ok := b.tunnelLocalAddrs(t)
	if !ok {
		return Connection{}, nil, false
	}
	ike := spec.IKE
	life := durationOr(ike.Lifetime, defaultLifetime)
	rk, over := rekey(life, ike.RekeyTime)
	c := Connection{
		Name:        TunnelConnectionName(t.Name),
		Version:     version,
		LocalAddrs:  localAddrs,
		RemoteAddrs: slices.Clone(spec.Remote.Addresses),
		Proposals:   ikeProps,
		Mobike:      version == 2 && ike.MOBIKE != nil && *ike.MOBIKE,
		DPDDelay:    durationOr(ike.DPD.Delay, defaultDPDDelay),
		SendCert:    "always",
		SendCertReq: local.Method == "pubkey",
		RekeyTime:   rk,
		OverTime:    over,
		Local:       []Auth{local},
		Remote:      []Auth{remote},
		// A peer that re-initiates (after a restart, or retrying an SA it
		// could not install) must not pile IKE_SAs up on the gateway.
		Unique: "replace",
		// A tunnel that is to come back by itself never gives up: each try
		// runs charon's retransmission schedule, so the retries back off.
		KeyingTries: KeyingTriesForever,
	}
	if ike.DPD.Delay != nil && ike.DPD.Delay.Duration == 0 {
		c.DPDDelay = 0
	}
	if ike.ReauthTime != nil {
		c.ReauthTime = ike.ReauthTime.Duration
	}
	if local.Method == "psk" {
		c.SendCert = "never"
	}
	seen := map[string]bool{}
	var accepted []AcceptedChild
	for _, ch := range spec.Children {
		if seen[ch.Name] || ch.Name == "" {
			b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "child name %q is empty or used twice", ch.Name)
			return Connection{}, nil, false
		}
		seen[ch.Name] = true
		props := espProps[ch.Name]
		elife := durationOr(ch.ESP.Lifetime, defaultESPLife)
		erk, _ := rekey(elife, ch.ESP.RekeyTime)
		child := Child{
			Name:         sanitize(ch.Name),
			ESPProposals: props,
			LifeTime:     elife,
			RekeyTime:    erk,
			StartAction:  startAction(ch.StartAction),
			CloseAction:  tunnelCloseAction(ch.StartAction, ch.CloseAction),
			DPDAction:    tunnelDPDAction(ch.StartAction, ike.DPD.Action),
		}
		ac := AcceptedChild{Name: child.Name}
		for _, nets := range []struct {
			in   []v1alpha1.CIDR
			out  *[]string
			nets *[]netip.Prefix
			key  string
		}{{ch.LocalNetworks, &child.LocalTS, &ac.LocalNetworks, "localNetworks"}, {ch.RemoteNetworks, &child.RemoteTS, &ac.RemoteNetworks, "remoteNetworks"}} {
			if len(nets.in) == 0 {
				b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "child %s has no %s", ch.Name, nets.key)
				return Connection{}, nil, false
			}
			for _, n := range nets.in {
				p, ok := parsePrefix(n)
				if !ok {
					b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "child %s: %s entry %q is not a network in CIDR notation", ch.Name, nets.key, n)
					return Connection{}, nil, false
				}
				*nets.out = append(*nets.out, p.String())
				*nets.nets = append(*nets.nets, p)
			}
		}
		c.Children = append(c.Children, child)
		accepted = append(accepted, ac)
	}
	pairs := 0
	for _, ch := range accepted {
		pairs += len(ch.LocalNetworks) * len(ch.RemoteNetworks)
	}
	if pairs > MaxTunnelPairs {
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "children pair %d local with remote networks, more than %d", pairs, MaxTunnelPairs)
		return Connection{}, nil, false
	}
	slices.SortFunc(c.Children, func(x, y Child) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(accepted, func(x, y AcceptedChild) int { return strings.Compare(x.Name, y.Name) })
	return c, accepted, true
}

func startAction(a v1alpha1.StartAction) string {
	switch a {
	case "Start":
		return "start"
	case "None":
		return "none"
	default:
		return "trap"
	}
}

// withoutAEAD drops the IKE proposals that use AEAD ciphers, which IKEv1
// cannot: charon would offer such a proposal with its cipher removed.
func withoutAEAD(props []string) []string {
	var out []string
	for _, p := range props {
		aead := false
		for _, tok := range strings.Split(p, "-") {
			if strings.Contains(tok, "gcm") || strings.Contains(tok, "ccm") || tok == "chacha20poly1305" {
				aead = true
			}
		}
		if !aead {
			out = append(out, p)
		}
	}
	return out
}

// tunnelLocalAddrs are the gateway addresses the tunnel uses: the Tunnel's
// localAddress, which must be one of them, or all of them. Replicas run on
// nodes of their own addresses, and whichever holds the tunnel Lease
// initiates: without a localAddress charon then takes the source address
// of its route to the peer (charon 5.9.8 would send from the first listed
// address even where the node has no such address).
func (b *builder) tunnelLocalAddrs(t *v1alpha1.Tunnel) ([]string, bool) {
	var all []string
	for _, a := range b.gw.Spec.Addresses {
		if p, err := netip.ParseAddr(string(a)); err == nil {
			all = append(all, p.String())
		}
	}
	la := t.Spec.LocalAddress
	if la == "" && b.in.Replica.Split() {
		return nil, true
	}
	if la == "" {
		return all, true
	}
	p, err := netip.ParseAddr(string(la))
	if err != nil || !slices.Contains(all, p.String()) {
		b.problem(v1alpha1.ReasonInvalidSpec, KindTunnel, t.Name, "localAddress %q is not one of the gateway's addresses %v", la, all)
		return nil, false
	}
	return []string{p.String()}, true
}

// tunnelDPDAction is what charon does with a child whose peer DPD declared
// dead. The API's default, Clear, would leave a Start or Trap child down
// until a person acted, so those restart or trap again instead.
func tunnelDPDAction(start v1alpha1.StartAction, a v1alpha1.DPDAction) string {
	if a != "" && a != "Clear" {
		return dpdAction(a)
	}
	switch startAction(start) {
	case "start":
		return "restart"
	case "trap":
		return "trap"
	default:
		return "clear"
	}
}

// tunnelCloseAction is what charon does when the peer closes a child. The
// API's default, None, becomes start or trap for Start and Trap children
// for the same reason as in tunnelDPDAction.
func tunnelCloseAction(start v1alpha1.StartAction, a v1alpha1.CloseAction) string {
	if a != "" && a != "None" {
		return closeAction(a)
	}
	switch s := startAction(start); s {
	case "start", "trap":
		return s
	default:
		return "none"
	}
}

func closeAction(a v1alpha1.CloseAction) string {
	switch a {
	case "Start":
		return "start"
	case "Trap":
		return "trap"
	default:
		return "none"
	}
}
