package swan_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// staticUsers is manyUsers with a static address for each user, every
// other address, so that each splits the dynamic range.
func staticUsers(n int) Resources {
	in := manyUsers(n)
	for i := range in.Users {
		a := netip.AddrFrom4([4]byte{10, 3, byte(1 + i/125), byte(2 + 2*(i%125))})
		in.Users[i].Spec.StaticAddress = v1alpha1.IPAddress(a.String())
	}
	return in
}

// BenchmarkStaticUsers prints what charon loads for n users with static
// addresses (connections, pools, swanctl.conf bytes) and how long the
// agent's VICI apply takes: all of them into an empty charon, and one more
// static user into the loaded one. It measures once, whatever b.N.
func BenchmarkStaticUsers(b *testing.B) {
	ctx := context.Background()
	pki := newTestPKI(b)
	fmt.Printf("| static users | connections | pools | swanctl.conf | apply all | apply one more |\n|---|---|---|---|---|---|\n")
	for _, n := range []int{100, 1000} {
		in := staticUsers(n)
		pki.apply(&in)
		res := Build(in)
		if len(res.Problems) > 0 || len(res.Users) != n {
			b.Fatalf("%d problems (%v), %d users", len(res.Problems), res.Problems, len(res.Users))
		}
		more := staticUsers(n + 1)
		pki.apply(&more)
		next := Build(more)
		ns := netns.New(b, "stbn")
		c := charontest.Start(b, ns, charontest.Options{Name: fmt.Sprintf("static%d", n), LogLevels: map[string]int{"default": 0}})
		s := vici.NewClient(c.VICISocket())
		ap := vici.NewApplier(s)
		start := time.Now()
		if _, err := ap.Apply(ctx, res.Model); err != nil {
			b.Fatalf("Applying %d static users: %v", n, err)
		}
		all := time.Since(start)
		start = time.Now()
		if _, err := ap.Apply(ctx, next.Model); err != nil {
			b.Fatalf("Applying one more static user: %v", err)
		}
		one := time.Since(start)
		s.Close()
		conf := Render(res.Model, RenderOptions{})
		fmt.Printf("| %d | %d | %d | %d KiB | %v | %v |\n", n, len(res.Model.Connections), len(res.Model.Pools), len(conf)/1024,
			all.Round(time.Millisecond), one.Round(time.Millisecond))
		b.ReportMetric(float64(len(res.Model.Connections)), fmt.Sprintf("conns@%d", n))
		b.ReportMetric(float64(len(res.Model.Pools)), fmt.Sprintf("pools@%d", n))
		b.ReportMetric(float64(all.Microseconds())/1000, fmt.Sprintf("apply-ms@%d", n))
		b.ReportMetric(float64(one.Microseconds())/1000, fmt.Sprintf("apply-one-more-ms@%d", n))
	}
}
