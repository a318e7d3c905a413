package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// BenchmarkRebuildOneMoreUser is the agent's work for one new user at
// gateway sizes: build the whole model, diff it, load the one secret.
func BenchmarkRebuildOneMoreUser(b *testing.B) {
	pki := charontest.NewPKI(b, "Bench CA")
	leaf := pki.Server(b, "vpn.example.com", "vpn.example.com")
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			in := swan.Resources{
				Gateway:       *gen.Gateway(testNS, testGW),
				Pools:         []v1alpha1.MobilePool{*gen.Pool(testNS, "staff", "10.3.200.0/24", gen.SplitTunnel("10.3.0.0/24"))},
				Secrets:       map[string]map[string][]byte{},
				ServerCertPEM: leaf.CertPEM, ServerKeyPEM: leaf.KeyPEM, CAPEM: pki.CertPEM, Now: time.Now(),
			}
			add := func(name string) {
				u, s := user(name)
				in.Users = append(in.Users, *u)
				in.Secrets[s.Name] = s.Data
			}
			for i := range n {
				add(fmt.Sprintf("u%d", i))
			}
			a := vici.NewApplier(vicitest.NewFake())
			m := swan.Build(in).Model
			if _, err := a.Apply(context.Background(), m); err != nil {
				b.Fatal(err)
			}
			var build, apply time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				in.Users = in.Users[:n]
				add(fmt.Sprintf("extra%d", i))
				t0 := time.Now()
				m := swan.Build(in).Model
				t1 := time.Now()
				if _, err := a.Apply(context.Background(), m); err != nil {
					b.Fatal(err)
				}
				build += t1.Sub(t0)
				apply += time.Since(t1)
			}
			b.ReportMetric(float64(build.Microseconds())/float64(b.N)/1000, "build-ms")
			b.ReportMetric(float64(apply.Microseconds())/float64(b.N)/1000, "apply-ms")
		})
	}
}
