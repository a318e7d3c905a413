package vici_test

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// BenchmarkAddUser measures what adding one EAP-MSCHAPv2 user costs on a
// gateway charon that already holds n users: incrementally over VICI (one
// Apply of the model with the new user) against the naive way, rendering
// the whole configuration and running swanctl --load-all. Each runs on its
// own charon. It prints a table; run it with
//
//	go test -run '^$' -bench AddUser ./internal/vici/
func BenchmarkAddUser(b *testing.B) {
	require.Root(b)
	p := newGatewayPKI(b)
	type row struct {
		users                     int
		viciFirst, swanctlFirst   time.Duration
		viciP50, viciP99, viciMax time.Duration
		viciOps                   int
		swanctl                   time.Duration
		swanctlOps                int
		ratio                     float64
	}
	var rows []row
	version := "?"

	for _, n := range []int{10, 1000, 10000} {
		passwords := make(map[string]string, n)
		for i := 0; i < n; i++ {
			passwords[fmt.Sprintf("user%05d", i)] = fmt.Sprintf("password-%d", i)
		}
		base := gatewayModel(p, passwords)
		with := func(extra string) swan.Model {
			m := base
			m.Secrets = append(append([]swan.Secret(nil), base.Secrets...), swan.Secret{
				Name: "ntlm-" + extra, Type: "NTLM", Owners: []string{extra + "@example.com"}, Data: ntHash("pw-" + extra),
			})
			return m
		}
		r := row{users: n}

		viciNS := netns.New(b, "vbv")
		viciCharon := charontest.Start(b, viciNS, charontest.Options{Name: fmt.Sprintf("vici%d", n), Userspace: true})
		client := vici.NewClient(viciCharon.VICISocket())
		a := vici.NewApplier(client)
		ctx := context.Background()
		start := time.Now()
		if _, err := a.Apply(ctx, base); err != nil {
			b.Fatalf("Loading %d users over VICI: %v", n, err)
		}
		r.viciFirst = time.Since(start)
		if v, err := client.Call(ctx, "version", nil); err == nil {
			version = vici.Str(v, "version")
		}

		b.Run(fmt.Sprintf("vici/users=%d", n), func(b *testing.B) {
			b.StopTimer()
			samples := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				m := with(fmt.Sprintf("new%d", i))
				b.StartTimer()
				t0 := time.Now()
				res, err := a.Apply(ctx, m)
				d := time.Since(t0)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Ops) != 1 {
					b.Fatalf("Adding one user took %d writes", len(res.Ops))
				}
				samples = append(samples, d)
				// Back to n users, untimed.
				if _, err := a.Apply(ctx, base); err != nil {
					b.Fatal(err)
				}
			}
			sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
			r.viciP50 = samples[len(samples)/2]
			r.viciP99 = samples[(len(samples)*99)/100]
			r.viciMax = samples[len(samples)-1]
			r.viciOps = len(samples)
			b.ReportMetric(float64(r.viciP99.Microseconds())/1000, "p99-ms")
		})
		_ = client.Close()
		if err := viciCharon.Stop(); err != nil {
			b.Fatal(err)
		}

		swNS := netns.New(b, "vbs")
		swCharon := charontest.Start(b, swNS, charontest.Options{Name: fmt.Sprintf("swanctl%d", n), Userspace: true})
		start = time.Now()
		if out, err := swCharon.LoadAll(swan.Render(base, swan.RenderOptions{ShowSecrets: true}), swan.Files(base)); err != nil {
			b.Fatalf("Loading %d users with swanctl: %v\n%s", n, err, out)
		}
		r.swanctlFirst = time.Since(start)
		b.Run(fmt.Sprintf("swanctl-load-all/users=%d", n), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				m := with(fmt.Sprintf("new%d", i))
				t0 := time.Now()
				out, err := swCharon.LoadAll(swan.Render(m, swan.RenderOptions{ShowSecrets: true}), swan.Files(m))
				total += time.Since(t0)
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
			}
			r.swanctl = total / time.Duration(b.N)
			r.swanctlOps = b.N
		})
		if err := swCharon.Stop(); err != nil {
			b.Fatal(err)
		}
		if r.viciP50 > 0 {
			r.ratio = float64(r.swanctl) / float64(r.viciP50)
		}
		rows = append(rows, r)
	}

	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "users\t+1 user over VICI p50\tp99\tmax\t(samples)\t+1 user by swanctl --load-all\t(samples)\tratio\tfirst load over VICI\tfirst load by swanctl\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%d\t%v\t%v\t%v\t%d\t%v\t%d\t%.0fx\t%v\t%v\t\n", r.users,
			r.viciP50.Round(time.Microsecond), r.viciP99.Round(time.Microsecond), r.viciMax.Round(time.Microsecond), r.viciOps,
			r.swanctl.Round(time.Millisecond), r.swanctlOps, r.ratio,
			r.viciFirst.Round(time.Millisecond), r.swanctlFirst.Round(time.Millisecond))
	}
	_ = w.Flush()
	// b.Logf output of a benchmark with sub-benchmarks is not shown without -v.
	fmt.Printf("\nAdding one user to a charon holding N users (strongSwan %s, %d CPUs):\n%s\n", version, runtime.NumCPU(), sb.String())
}
