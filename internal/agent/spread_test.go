package agent

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

func TestANewSessionMovesOnlyWhenItsReplicaIsAboveItsShare(t *testing.T) {
	peers := func(n ...int) []peerLoad {
		var out []peerLoad
		for i, s := range n {
			out = append(out, peerLoad{pod: v1alpha1.GatewayPodName("vpn", i+1), addr: "192.0.2." + string(rune('1'+i)), sessions: s})
		}
		return out
	}
	tests := []struct {
		name  string
		own   int
		peers []peerLoad
		want  string // pod, "" for none
	}{
		{"alone", 5, nil, ""},
		{"one ahead stays", 1, peers(0), ""},
		{"two ahead moves", 2, peers(0), "vpn-gateway-1"},
		{"3 against 1 moves", 3, peers(1), "vpn-gateway-1"},
		{"to the least loaded", 4, peers(2, 1), "vpn-gateway-2"},
		{"first by pod among equals", 4, peers(1, 1), "vpn-gateway-1"},
		// Hysteresis: 10% of the share, here about 100 sessions.
		{"1000 against 990 stays", 1000, peers(990), ""},
		{"1100 against 890 moves", 1100, peers(890), "vpn-gateway-1"},
		// The least loaded is only one behind: moving would swap the roles.
		{"gap of one stays", 3, peers(2, 3), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := balanceTarget(tt.own, tt.peers)
			if (tt.want != "") != ok || got.pod != tt.want {
				t.Errorf("balanceTarget(%d, %+v) = %+v, %v; want %q", tt.own, tt.peers, got, ok, tt.want)
			}
		})
	}
}

// TestBalancedRedirectsNeverSendASessionBack plays two replicas with
// perfect knowledge of each other: clients keep arriving at replica 0,
// and whatever it sends over, replica 1 never finds a reason to send
// back, while the split stays within one session.
func TestBalancedRedirectsNeverSendASessionBack(t *testing.T) {
	r0, r1 := 0, 0
	for range 100 {
		r0++
		if _, ok := balanceTarget(r0, []peerLoad{{pod: "vpn-gateway-1", sessions: r1}}); ok {
			r0, r1 = r0-1, r1+1
			if _, back := balanceTarget(r1, []peerLoad{{pod: "vpn-gateway-0", sessions: r0}}); back {
				t.Fatalf("replica 1 would send a session back at %d/%d", r0, r1)
			}
		}
		// The gap stays within twice the hysteresis margin.
		if margin := max(1, int(math.Ceil(spreadMargin*float64(r0+r1)/2))); r0-r1 > 2*margin {
			t.Fatalf("split %d/%d after %d clients", r0, r1, r0+r1)
		}
	}
}

func TestSpreadingConsidersEachNewSessionOnceItSettled(t *testing.T) {
	st := newSpreadState()
	now := time.Unix(1000, 0)
	sa := func(id uint32) vici.IKESA { return vici.IKESA{UniqueID: id} }
	if got, wait := st.fresh([]vici.IKESA{sa(1), sa(2)}, now); got != nil || wait != 0 {
		t.Errorf("the first listing (sessions from before the agent) gave %v, wait %v; want none", got, wait)
	}
	later := now.Add(300 * time.Millisecond)
	if got, wait := st.fresh([]vici.IKESA{sa(1), sa(4), sa(3)}, later); got != nil || wait != spreadSettle {
		t.Errorf("new sessions gave %v, wait %v; want none before they settled, wait %v", got, wait, spreadSettle)
	}
	got, wait := st.fresh([]vici.IKESA{sa(1), sa(4), sa(3), sa(5)}, later.Add(spreadSettle))
	if len(got) != 2 || got[0].UniqueID != 3 || got[1].UniqueID != 4 || wait != spreadSettle {
		t.Errorf("fresh = %+v, wait %v; want #3 and #4, oldest first, and #5 in %v", got, wait, spreadSettle)
	}
	if got, _ := st.fresh([]vici.IKESA{sa(3), sa(4)}, later.Add(3*spreadSettle)); len(got) != 0 {
		t.Errorf("sessions considered before came again: %+v", got)
	}
	st.noteLog(&vici.LogEntry{IKEUniqueID: 7, Message: "client got redirected from 192.0.2.2"}, now)
	st.noteLog(&vici.LogEntry{IKEUniqueID: 8, Message: "IKE_SA established"}, now)
	if _, in := st.in[7]; !in {
		t.Error("a client redirected to us is not marked")
	}
	if _, in := st.in[8]; in {
		t.Error("a client that was not redirected is marked")
	}
}

func TestRedirectsCountTowardTheirTargetUntilItsReportShowsThem(t *testing.T) {
	st := newSpreadState()
	now := time.Unix(1000, 0)
	to := peerLoad{pod: "vpn-gateway-1", addr: "192.0.2.6"}
	st.sent(1, to, 0, now)
	st.sent(2, to, 0, now.Add(time.Second))
	if got := st.load(to.addr, 0, now.Add(2*time.Second)); got != 2 {
		t.Errorf("load before the target reported = %d, want 2", got)
	}
	if got := st.load(to.addr, 3, now.Add(2*time.Second)); got != 3 {
		t.Errorf("load once the target reported 3 = %d, want 3", got)
	}
	if got := st.load(to.addr, 0, now.Add(time.Second+spreadPendingFor+time.Millisecond)); got != 0 {
		t.Errorf("load after the pending time = %d, want the report, 0", got)
	}
}

func TestTheRedirectRateIsCapped(t *testing.T) {
	st := newSpreadState()
	now := time.Unix(1000, 0)
	n := 0
	for st.take(now) {
		n++
	}
	if n != int(spreadBurst) {
		t.Errorf("%d redirects at once, want the burst of %v", n, spreadBurst)
	}
	if !st.take(now.Add(time.Second)) {
		t.Error("no redirect a second later")
	}
}

func TestSpreadPeersAreTheOtherCurrentReplicasThatTakeClients(t *testing.T) {
	gw := &v1alpha1.VPNGateway{}
	gw.Name, gw.Generation = "vpn", 4
	gw.Spec.Exposure.Replicas = 4
	gw.Status.Agents = []v1alpha1.AgentStatus{
		{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.2", AppliedGeneration: 4, Sessions: 7},
		{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.6", AppliedGeneration: 4, Sessions: 3},
		{Pod: "vpn-gateway-2", NodeAddress: "192.0.2.10", AppliedGeneration: 4, Draining: true},
		{Pod: "vpn-gateway-3", NodeAddress: "192.0.2.14", AppliedGeneration: 3}, // behind
		{Pod: "vpn-gateway-4", NodeAddress: "192.0.2.18", AppliedGeneration: 4}, // scaled away
	}
	want := []peerLoad{{pod: "vpn-gateway-1", addr: "192.0.2.6", sessions: 3}}
	if diff := cmp.Diff(want, otherReplicas(gw, "vpn-gateway-0"), cmp.AllowUnexported(peerLoad{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := drainTargets(gw, "vpn-gateway-0"); !cmp.Equal(got, []string{"192.0.2.6"}) {
		t.Errorf("drain targets %v, want only the replica that is not draining", got)
	}
}

func TestStaticUsersGoToTheReplicaOwningTheirSlice(t *testing.T) {
	pool := netip.MustParsePrefix("10.3.200.0/24")
	in := spreadInputs{
		replica: swan.Replica{Ordinal: 0, Count: 2},
		statics: map[netip.Addr]netip.Prefix{
			netip.MustParseAddr("10.3.200.5"):   pool, // slice 0: replica 0's
			netip.MustParseAddr("10.3.200.200"): pool, // slice 12: replica 1's
		},
	}
	a := &Agent{opts: Options{Gateway: "vpn"}, spreadIn: in}
	peers := []peerLoad{{pod: "vpn-gateway-1", addr: "192.0.2.6", sessions: 9}}
	if to, _, ok := a.spreadTarget(in, vici.IKESA{RemoteVIPs: []string{"10.3.200.200"}}, 0, peers); !ok || to.pod != "vpn-gateway-1" {
		t.Errorf("replica 1's static user goes to %+v, %v; want vpn-gateway-1 whatever the counts", to, ok)
	}
	if _, _, ok := a.spreadTarget(in, vici.IKESA{RemoteVIPs: []string{"10.3.200.5"}}, 20, peers[:0]); ok {
		t.Error("a static user on its own replica is moved")
	}
	if _, _, ok := a.spreadTarget(in, vici.IKESA{RemoteVIPs: []string{"10.3.200.200"}}, 0, nil); ok {
		t.Error("a static user is moved while its replica cannot take it")
	}
	users := map[string][]v1alpha1.Session{
		"a@example.com": {{VirtualAddresses: []string{"10.3.200.5"}}},
		"b@example.com": {{VirtualAddresses: []string{"10.3.200.200"}}},
		"c@example.com": {{VirtualAddresses: []string{"10.3.200.201"}}}, // dynamic
	}
	if got := a.foreignStatics(users); !cmp.Equal(got, []string{"10.3.200.200"}) {
		t.Errorf("foreign static addresses %v, want replica 1's static user only", got)
	}
}
