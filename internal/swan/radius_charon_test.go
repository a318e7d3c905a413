package swan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/poll"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestRADIUSServersTakeEffect starts charon with the eap-radius include of a
// directory that does not exist yet (a gateway pod before its agent wrote),
// then writes rendered servers whose values carry strongswan.conf syntax and
// has charon re-read its settings over VICI, as the agent does: charon must
// parse every server, without a restart, and drop them when the file goes.
func TestRADIUSServersTakeEffect(t *testing.T) {
	ns := netns.New(t, "swra")
	dir := filepath.Join(t.TempDir(), "radius")
	c := charontest.Start(t, ns, charontest.Options{
		Name: "gw",
		Settings: func(s *swan.Settings) {
			s.EAPRADIUS = &swan.EAPRADIUS{ServersInclude: dir + "/*.conf"}
		},
	})
	c.WaitLog(t, "loaded 0 RADIUS server configurations", 5*time.Second)

	s := vici.NewClient(c.VICISocket())
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	reload := func() {
		t.Helper()
		if _, err := s.Call(ctx, "reload-settings", govici.NewMessage()); err != nil {
			t.Fatalf("reload-settings: %v", err)
		}
	}

	secret := "a\"b\\c}d#e f\tg\nh\ri"
	conf := swan.RenderRADIUSServers([]swan.RADIUSServer{
		{Name: "primary", Address: "192.0.2.10", AuthPort: 1812, AcctPort: 1813, Secret: []byte(secret), NASIdentifier: "nas } #"},
		{Name: "backup", Address: "192.0.2.11", AuthPort: 11812, AcctPort: 11813, Secret: []byte("x"), Sockets: 8},
	})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "servers.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	reload()
	c.WaitLog(t, "loaded 2 RADIUS server configurations", 5*time.Second)
	if strings.Contains(c.Log(), "skipped") {
		t.Fatalf("charon skipped a RADIUS server:\n%s", c.Log())
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	reload()
	// What charon logged since it loaded the two servers.
	poll.Eventually(t, "charon to drop its RADIUS servers with their file", 5*time.Second, func() error {
		log := c.Log()
		_, since, _ := strings.Cut(log, "loaded 2 RADIUS server configurations")
		if !strings.Contains(since, "loaded 0 RADIUS server configurations") {
			return fmt.Errorf("charon kept them:\n%s", log)
		}
		return nil
	}, poll.Every(50*time.Millisecond))
}
