package netns

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/testutil/require"
)

func TestUniqueName(t *testing.T) {
	tests := []struct {
		prefix string
		pid    int
		n      uint32
		want   string
	}{
		{"gw", 1234, 1, "gw1234-1"},
		{"router", 4194304, 12, "route4194304-12"},
		{"x", 4194304, 123456, "x4194304-123456"},
		{"abc", 4194304, 1234567, "a194304-1234567"},
	}
	for _, tt := range tests {
		got := uniqueName(tt.prefix, tt.pid, tt.n)
		if got != tt.want {
			t.Errorf("uniqueName(%q, %d, %d) = %q, want %q", tt.prefix, tt.pid, tt.n, got, tt.want)
		}
		if len(got) > maxNameLen {
			t.Errorf("uniqueName(%q, %d, %d) = %q is longer than %d", tt.prefix, tt.pid, tt.n, got, maxNameLen)
		}
	}
}

func TestNamespacesVethAndDo(t *testing.T) {
	require.Root(t)
	var names []string
	t.Run("topology", func(t *testing.T) {
		a := New(t, "nsa")
		b := New(t, "nsb")
		names = append(names, a.Name(), b.Name())
		if _, err := os.Stat(a.Path()); err != nil {
			t.Fatalf("Netns file: %v", err)
		}
		ifA, ifB := Veth(t, a, b, "10.250.0.1/30", "10.250.0.2/30")
		if out := b.Run(t, "ip", "-o", "addr", "show", "dev", ifB); !strings.Contains(out, "10.250.0.2/30") {
			t.Fatalf("Address missing on %s: %s", ifB, out)
		}
		b.AddLoopbackAddr(t, "10.251.0.1/24")
		a.AddRoute(t, "10.251.0.0/24", "via", "10.250.0.2", "dev", ifA)

		// A listener created inside b via Do stays in b and is reachable from a.
		var ln net.Listener
		b.MustDo(t, func() error {
			var err error
			ln, err = net.Listen("tcp4", "10.251.0.1:0")
			return err
		})
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			_ = c.Close()
		}()
		var got []byte
		a.MustDo(t, func() error {
			c, err := net.DialTimeout("tcp4", ln.Addr().String(), 3*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			got, err = io.ReadAll(c)
			return err
		})
		if string(got) != "hello" {
			t.Fatalf("Got %q through the veth, want hello", got)
		}
		// The caller's thread is back in its own namespace: the address is not visible here.
		if c, err := net.DialTimeout("tcp4", ln.Addr().String(), 200*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("Dial from the host namespace reached a listener inside %s", b.Name())
		}

		a.Start(t, "sleep", "60")
	})
	for _, n := range names {
		if _, err := os.Stat("/run/netns/" + n); !os.IsNotExist(err) {
			t.Errorf("Netns %s still present after cleanup (stat err %v)", n, err)
		}
	}
}
