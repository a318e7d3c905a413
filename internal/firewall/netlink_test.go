package firewall

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recordedRule is a NEWRULE message decoded far enough to check encodings.
type recordedRule struct {
	chain   string
	comment string
	exprs   []string // "name attr=hex ..." per expression, attrs in message order
}

// record programs rs for a table that does not exist yet and returns the
// message types of the batch and its rules, as the kernel would receive them.
func record(t *testing.T, rs *Ruleset) (types []string, rules []recordedRule) {
	t.Helper()
	conn, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			switch m.Header.Type {
			case netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), netlink.HeaderType(unix.NFNL_MSG_BATCH_END):
				continue
			}
			msgType := int(m.Header.Type & 0xff)
			types = append(types, msgName[msgType])
			if msgType == unix.NFT_MSG_NEWRULE {
				rules = append(rules, decodeRule(t, m.Data[4:]))
			}
		}
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	a := &Applier{table: rs.Table, conn: conn}
	if err := a.program(conn, rs, nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	return types, rules
}

var msgName = map[int]string{
	unix.NFT_MSG_NEWTABLE: "newtable",
	unix.NFT_MSG_DELTABLE: "deltable",
	unix.NFT_MSG_NEWCHAIN: "newchain",
	unix.NFT_MSG_DELCHAIN: "delchain",
	unix.NFT_MSG_NEWRULE:  "newrule",
	unix.NFT_MSG_DELRULE:  "delrule",
	unix.NFT_MSG_NEWOBJ:   "newobj",
	unix.NFT_MSG_DELOBJ:   "delobj",
}

func decodeRule(t *testing.T, b []byte) recordedRule {
	t.Helper()
	var r recordedRule
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_CHAIN:
			r.chain = ad.String()
		case unix.NFTA_RULE_USERDATA:
			r.comment, _ = userdata.GetString(ad.Bytes(), userdata.TypeComment)
		case unix.NFTA_RULE_EXPRESSIONS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(e *netlink.AttributeDecoder) error {
						var name string
						var attrs []string
						for e.Next() {
							switch e.Type() {
							case unix.NFTA_EXPR_NAME:
								name = e.String()
							case unix.NFTA_EXPR_DATA:
								attrs = flatAttrs(t, e.Bytes())
							}
						}
						r.exprs = append(r.exprs, strings.TrimSpace(name+" "+strings.Join(attrs, " ")))
						return nil
					})
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// flatAttrs prints attributes as type=hex; nested data (cmp's NFTA_CMP_DATA)
// is printed as the value it wraps.
func flatAttrs(t *testing.T, b []byte) []string {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for ad.Next() {
		v := ad.Bytes()
		if inner, err := netlink.UnmarshalAttributes(v); err == nil && len(inner) == 1 && inner[0].Type == unix.NFTA_DATA_VALUE {
			v = inner[0].Data
		}
		out = append(out, fmt.Sprintf("%d=%s", ad.Type(), hex.EncodeToString(v)))
	}
	return out
}

func ruleByComment(t *testing.T, rules []recordedRule, prefix string) recordedRule {
	t.Helper()
	i := slices.IndexFunc(rules, func(r recordedRule) bool { return strings.HasPrefix(r.comment, prefix+"#") })
	if i < 0 {
		t.Fatalf("No rule with id %s", prefix)
	}
	return rules[i]
}

func TestKernelDataPlaneEncodesIPsecInMatch(t *testing.T) {
	rs, err := Build(seedConfig(DataPlaneKernel))
	if err != nil {
		t.Fatal(err)
	}
	_, rules := record(t, rs)
	r := ruleByComment(t, rules, "pool/mobile/allow/0.0")
	if r.chain != "pool-mobile" {
		t.Errorf("Allow rule in chain %q", r.chain)
	}
	// meta load secpath => reg 1; cmp eq reg 1 0x01 (NFTA_META_DREG=1,
	// NFTA_META_KEY=2; NFTA_CMP_SREG=1, NFTA_CMP_OP=2, NFTA_CMP_DATA=3).
	want := []string{
		"meta 2=00000019 1=00000001",
		"cmp 1=00000001 2=00000000 3=01",
	}
	if diff := cmp.Diff(want, r.exprs[:2]); diff != "" {
		t.Errorf("IPsec match (-want +got):\n%s\nall: %q", diff, r.exprs)
	}
	// The userspace data plane matches the TUN device by name instead.
	rs, err = Build(seedConfig(DataPlaneUserspace))
	if err != nil {
		t.Fatal(err)
	}
	_, rules = record(t, rs)
	r = ruleByComment(t, rules, "pool/mobile/allow/0.0")
	want = []string{
		"meta 2=00000006 1=00000001",
		"cmp 1=00000001 2=00000000 3=69707365633000000000000000000000",
	}
	if diff := cmp.Diff(want, r.exprs[:2]); diff != "" {
		t.Errorf("Interface match (-want +got):\n%s\nall: %q", diff, r.exprs)
	}
	for _, r := range rules {
		for _, e := range r.exprs {
			if strings.HasPrefix(e, "meta 2=00000019") {
				t.Errorf("Userspace rule %s matches the kernel secpath", r.comment)
			}
		}
	}
}

func TestMSSClampEncoding(t *testing.T) {
	rs, err := Build(seedConfig(DataPlaneUserspace))
	if err != nil {
		t.Fatal(err)
	}
	_, rules := record(t, rs)
	r := ruleByComment(t, rules, "mss/out/ipv4")
	// exthdr: DREG=1, TYPE=2 (maxseg), OFFSET=3, LEN=4, FLAGS=5, OP=6 (tcpopt), SREG=7.
	want := []string{
		"meta 2=00000007 1=00000001", // oifname
		"cmp 1=00000001 2=00000000 3=69707365633000000000000000000000",
		"meta 2=0000000f 1=00000001", // nfproto
		"cmp 1=00000001 2=00000000 3=02",
		"meta 2=00000010 1=00000001", // l4proto
		"cmp 1=00000001 2=00000000 3=06",
		"payload 1=00000001 2=00000002 3=0000000d 4=00000001", // th flags
		"bitwise 1=00000001 2=00000001 3=00000001 4=06 5=00",
		"cmp 1=00000001 2=00000000 3=02",
		"exthdr 1=00000001 2=02 3=00000002 4=00000002 6=00000001 5=00000000",
		"cmp 1=00000001 2=00000004 3=0546", // gt 1350
		"counter 1=0000000000000000 2=0000000000000000",
		"immediate 1=00000001 2=0546",
		"exthdr 7=00000001 2=02 3=00000002 4=00000002 6=00000001",
	}
	if diff := cmp.Diff(want, r.exprs); diff != "" {
		t.Errorf("MSS clamp rule (-want +got):\n%s", diff)
	}
}

func TestFreshApplyIsOneBatch(t *testing.T) {
	rs, err := Build(seedConfig(DataPlaneKernel))
	if err != nil {
		t.Fatal(err)
	}
	types, rules := record(t, rs)
	nRules := 0
	for _, c := range rs.Chains {
		nRules += len(c.Rules)
	}
	want := []string{"newtable", "newobj"}
	for range rs.Chains {
		want = append(want, "newchain")
	}
	for range nRules {
		want = append(want, "newrule")
	}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("Batch (-want +got):\n%s", diff)
	}
	var comments []string
	for _, r := range rules {
		comments = append(comments, r.comment)
	}
	var wantComments []string
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			wantComments = append(wantComments, r.Comment())
		}
	}
	if diff := cmp.Diff(wantComments, comments); diff != "" {
		t.Errorf("Rule comments (-want +got):\n%s", diff)
	}
}
