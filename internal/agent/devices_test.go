package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

func TestExcessDevices(t *testing.T) {
	up := []vici.ChildSA{{Name: "staff", State: "INSTALLED"}}
	sa := func(id uint32, eap, host string, port int) vici.IKESA {
		return vici.IKESA{Name: "mobile-staff", UniqueID: id, State: "ESTABLISHED", RemoteHost: host, RemotePort: port, RemoteEAPID: eap, Children: up}
	}
	laptop, phone, tablet := sa(3, "jimp@example.com", "203.0.113.9", 4500), sa(5, "jimp@example.com", "198.51.100.7", 4500), sa(8, "jimp@example.com", "198.51.100.7", 4501)
	// laptop's reauthenticated successor: the same device.
	laptop2 := sa(9, "jimp@example.com", "203.0.113.9", 4500)
	withoutChild := sa(10, "jimp@example.com", "192.0.2.9", 4500)
	withoutChild.Children = nil
	deleting := sa(11, "jimp@example.com", "192.0.2.10", 4500)
	deleting.State = "DELETING"
	radius := []vici.IKESA{sa(20, "rita@example.com", "192.0.2.20", 4500), sa(21, "rita@example.com", "192.0.2.21", 4500)}
	tunnel := vici.IKESA{Name: "tunnel-hq", UniqueID: 2, State: "ESTABLISHED", RemoteHost: "192.0.2.80", RemotePort: 500, RemoteID: "hq", Children: up}
	tunnels := map[string]tunnelInfo{"tunnel-hq": {name: "hq"}}
	limits := func(jimp, fallback int) sessionLimits {
		return limitsFrom(&swan.Result{MaxSessions: fallback, Users: []swan.AcceptedUser{{Name: "jimp", Identity: "jimp@example.com", MaxSessions: jimp}}})
	}
	ids := func(ds []device) [][]uint32 {
		var out [][]uint32
		for _, d := range ds {
			var one []uint32
			for _, s := range d.sas {
				one = append(one, s.UniqueID)
			}
			out = append(out, one)
		}
		return out
	}
	tests := []struct {
		name   string
		sas    []vici.IKESA
		limits sessionLimits
		want   [][]uint32
	}{
		{"within the limit", []vici.IKESA{laptop, phone, tablet}, limits(3, 4), nil},
		{"the oldest device goes", []vici.IKESA{tablet, phone, laptop}, limits(2, 4), [][]uint32{{3}}},
		{"a device is all IKE_SAs of its endpoint", []vici.IKESA{laptop2, phone, laptop}, limits(1, 4), [][]uint32{{3, 9}}},
		{"down to one", []vici.IKESA{laptop, phone, tablet}, limits(1, 4), [][]uint32{{3}, {5}}},
		{"IKE_SAs without traffic and dying ones are no devices", []vici.IKESA{laptop, withoutChild, deleting, tunnel}, limits(1, 4), nil},
		{"identities without a VPNUser take the gateway's limit", radius, limits(4, 1), [][]uint32{{20}}},
		{"no limits before the first apply", []vici.IKESA{laptop, phone}, sessionLimits{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, ids(excessDevices(tc.sas, tunnels, tc.limits))); d != "" {
				t.Errorf("excessDevices (-want +got):\n%s", d)
			}
		})
	}
}
