package agent

import (
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection"

	"github.com/ikegate/ikegate/internal/swan"
)

func TestLeaseTimingIsOneClientGoAccepts(t *testing.T) {
	for _, in := range []LeaseTiming{{}, {Duration: 4 * time.Second}, {Duration: 4 * time.Second, RenewDeadline: 5 * time.Second, RetryPeriod: 3 * time.Second}} {
		l := in.withDefaults()
		// client-go refuses a config that breaks these (NewLeaderElector).
		if l.Duration <= l.RenewDeadline || float64(l.RetryPeriod)*leaderelection.JitterFactor >= float64(l.RenewDeadline) || l.RetryPeriod <= 0 {
			t.Errorf("%+v -> %+v: not duration > renew > jittered retry > 0", in, l)
		}
	}
	if l := (LeaseTiming{}).withDefaults(); l != (LeaseTiming{DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod}) {
		t.Errorf("zero timing -> %+v, want the defaults", l)
	}
}

func TestAPodWithoutTheLeaseLoadsNoTunnel(t *testing.T) {
	res := swan.Result{
		Model: swan.Model{Connections: []swan.Connection{
			{Name: swan.MobileConnectionName("staff")}, {Name: swan.TunnelConnectionName("hq")},
		}},
		Tunnels: []swan.AcceptedTunnel{{Name: "hq", Connection: swan.TunnelConnectionName("hq")}},
	}
	got := withoutTunnels(res)
	if len(got.Tunnels) != 0 || len(got.Model.Connections) != 1 || got.Model.Connections[0].Name != swan.MobileConnectionName("staff") {
		t.Errorf("without tunnels: %+v, %+v", got.Model.Connections, got.Tunnels)
	}
	if len(res.Model.Connections) != 2 {
		t.Errorf("the holder's result was changed: %+v", res.Model.Connections)
	}
}
