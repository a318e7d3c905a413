package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// metaKeySecpath is NFT_META_SECPATH ("meta ipsec" in nft): a one-byte
// boolean, true when the packet was decapsulated by an XFRM state. Neither
// google/nftables nor x/sys/unix name it; the value is fixed by the kernel
// UAPI (enum nft_meta_keys in include/uapi/linux/netfilter/nf_tables.h).
const metaKeySecpath expr.MetaKey = 25

// tcpOptMaxseg is the TCP option kind of MSS (RFC 9293); its value is the 2
// bytes after kind and length.
const (
	tcpOptMaxseg       = 2
	tcpOptMaxsegOffset = 2
	tcpOptMaxsegLen    = 2
)

// objectTypeCounter is NFT_OBJECT_COUNTER.
const objectTypeCounter = 1

// ifnameBytes pads a device name the way the kernel compares it (IFNAMSIZ).
func ifnameBytes(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// exprs encodes r the way nft 1.0 encodes the text r.text() prints, so a
// table applied here lists exactly as RenderNft renders it.
func (r Rule) exprs() ([]expr.Any, error) {
	var e []expr.Any
	cmpEq := func(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }
	if r.IPsecIn {
		e = append(e, &expr.Meta{Key: metaKeySecpath, Register: 1}, cmpEq([]byte{1}))
	}
	if r.IIFName != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmpEq(ifnameBytes(r.IIFName)))
	}
	if r.OIFName != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, cmpEq(ifnameBytes(r.OIFName)))
	}
	switch r.Family {
	case FamilyIPv4:
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{unix.NFPROTO_IPV4}))
	case FamilyIPv6:
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{unix.NFPROTO_IPV6}))
	}
	for _, m := range []struct {
		p   netip.Prefix
		src bool
	}{{r.SAddr, true}, {r.DAddr, false}} {
		if !m.p.IsValid() {
			continue
		}
		pe, err := prefixExprs(r.Family, m.p, m.src)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.ID, err)
		}
		e = append(e, pe...)
	}
	if r.L4 != L4Any || r.TCPSyn || r.MSSAbove != 0 || r.SetMSS != 0 {
		proto, ok := map[L4]byte{
			L4TCP: unix.IPPROTO_TCP, L4UDP: unix.IPPROTO_UDP, L4ICMP: unix.IPPROTO_ICMP,
			L4ICMPv6: unix.IPPROTO_ICMPV6, L4ESP: unix.IPPROTO_ESP,
		}[r.L4]
		if !ok {
			return nil, fmt.Errorf("rule %s: TCP matches without protocol TCP", r.ID)
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{proto}))
	}
	if r.DPorts != (PortRange{}) {
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		if r.DPorts.From == r.DPorts.To {
			e = append(e, cmpEq(be16(r.DPorts.From)))
		} else {
			e = append(e,
				&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: be16(r.DPorts.From)},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: be16(r.DPorts.To)})
		}
	}
	if r.TCPSyn {
		const syn, rst = 0x02, 0x04
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{syn | rst}, Xor: []byte{0}},
			cmpEq([]byte{syn}))
	}
	if r.CtState != 0 {
		mask := binary.NativeEndian.AppendUint32(nil, uint32(r.CtState))
		e = append(e,
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.MSSAbove != 0 {
		e = append(e,
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, DestRegister: 1, Type: tcpOptMaxseg, Offset: tcpOptMaxsegOffset, Len: tcpOptMaxsegLen},
			&expr.Cmp{Op: expr.CmpOpGt, Register: 1, Data: be16(r.MSSAbove)})
	}
	if r.NamedCounter != "" {
		e = append(e, &expr.Objref{Type: objectTypeCounter, Name: r.NamedCounter})
	} else if r.Counter {
		e = append(e, &expr.Counter{})
	}
	if r.SetMSS != 0 {
		e = append(e,
			&expr.Immediate{Register: 1, Data: be16(r.SetMSS)},
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, SourceRegister: 1, Type: tcpOptMaxseg, Offset: tcpOptMaxsegOffset, Len: tcpOptMaxsegLen})
	}
	switch r.Verdict {
	case VerdictAccept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case VerdictDrop:
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case VerdictJump:
		e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Jump})
	case VerdictMasquerade:
		e = append(e, &expr.Masq{})
	}
	return e, nil
}

// prefixExprs matches the source or destination address against p, loading
// only the prefix's bytes when it is byte aligned and masking the whole
// address otherwise, as nft does (so nft lists it as a prefix again).
func prefixExprs(fam Family, p netip.Prefix, src bool) ([]expr.Any, error) {
	if familyOf(p) != fam {
		return nil, fmt.Errorf("%s does not match the rule's address family", p)
	}
	var off uint32
	switch {
	case fam == FamilyIPv4 && src:
		off = 12
	case fam == FamilyIPv4:
		off = 16
	case src:
		off = 8
	default:
		off = 24
	}
	addr := p.Addr().AsSlice()
	bits := p.Bits()
	if bits == 0 {
		return nil, nil
	}
	if bits%8 == 0 {
		n := bits / 8
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(n)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:n]},
		}, nil
	}
	// Not byte aligned: nft loads the whole address and masks it.
	n := len(addr)
	m := make([]byte, n)
	for i := 0; i < bits; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(n)},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(n), Mask: m, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:n]},
	}, nil
}
