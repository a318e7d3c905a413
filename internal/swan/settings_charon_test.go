package swan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// TestStrongswanConfTakesEffect starts charon with rendered settings and
// checks that it reads them: plugins disabled, the stderr logger, and
// retransmission (a silent peer is given up after the configured single
// retransmit instead of charon's default five, about two minutes).
func TestStrongswanConfTakesEffect(t *testing.T) {
	gwNS := netns.New(t, "swgw")
	silent := netns.New(t, "swsi")
	netns.Veth(t, gwNS, silent, "192.0.2.1/24", "192.0.2.2/24")

	c := charontest.Start(t, gwNS, charontest.Options{
		Name: "gw",
		Settings: func(s *swan.Settings) {
			s.IKESATableSize = 1024
			s.IKESATableSegments = 16
			s.Retransmit = swan.Retransmit{Tries: 1, Timeout: 400 * time.Millisecond, Base: 1.5, Jitter: 10, Limit: 5 * time.Second}
			s.Log.Stderr = true
			s.DisablePlugins = append(s.DisablePlugins, "unity")
		},
	})
	conf, err := os.ReadFile(filepath.Join(c.Dir(), "strongswan.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ikesa_table_size = 1024", "retransmit_tries = 1", "retransmit_timeout = 0.4", "stderr {"} {
		if !strings.Contains(string(conf), want) {
			t.Fatalf("Rendered strongswan.conf lacks %q:\n%s", want, conf)
		}
	}

	stats, err := c.Swanctl("--stats")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stats, " unity") || !strings.Contains(stats, " vici") {
		t.Errorf("Plugin list does not follow the settings:\n%s", stats)
	}

	if out, err := c.LoadAll(`connections {
  silent {
    version = 2
    remote_addrs = 192.0.2.2
    keyingtries = 1
    local { auth = psk }
    remote { auth = psk }
    children { silent { remote_ts = 10.9.0.0/24 } }
  }
}
secrets { ike { secret = retransmit-test-only } }
`, nil); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	start := time.Now()
	out, err := c.Swanctl("--initiate", "--child", "silent", "--timeout", "30")
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("Initiating towards a silent peer succeeded:\n%s", out)
	}
	// 0.4 s, then 0.4*1.5 = 0.6 s after the one retransmit, each up to 10% shorter.
	if !strings.Contains(out, "giving up after 1 retransmits") || elapsed > 5*time.Second {
		t.Fatalf("Retransmission settings not applied (%v):\n%s", elapsed, out)
	}
	t.Logf("Gave up on a silent peer after %v", elapsed.Round(10*time.Millisecond))

	stderr, err := os.ReadFile(filepath.Join(c.Dir(), "charon.out"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stderr), "giving up after 1 retransmits") {
		t.Errorf("stderr logger wrote nothing about the IKE_SA:\n%s", stderr)
	}
}
