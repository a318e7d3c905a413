package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// waitSettled waits until the manager has written a current Valid and
// ProfileReady condition for each of the n users: it validates a bulk and
// builds every new user's profiles too, and a sample measures one change
// on a settled gateway, not one queued behind a bulk's profiles (at
// 100,000 users those take minutes after the last write, and the API
// server's writes of them slow every other write meanwhile).
func waitSettled(t testing.TB, c client.Client, n int) {
	ctx := context.Background()
	current := func(u *v1alpha1.VPNUser, typ string) bool {
		cond := meta.FindStatusCondition(u.Status.Conditions, typ)
		return cond != nil && cond.ObservedGeneration == u.Generation
	}
	waitFor(t, 30*time.Minute*time.Duration(max(1, n/10000)), fmt.Sprintf("the manager to validate %d users and build their profiles", n), func() (bool, string) {
		// In pages: a list of 100,000 users at once costs the API server
		// hundreds of megabytes each time, which it keeps.
		invalid, profiles, seen := 0, 0, 0
		var users v1alpha1.VPNUserList
		for {
			if err := c.List(ctx, &users, client.InNamespace(namespace), client.Limit(2000), client.Continue(users.Continue)); err != nil {
				return false, err.Error()
			}
			seen += len(users.Items)
			for i := range users.Items {
				if !current(&users.Items[i], v1alpha1.ConditionValid) {
					invalid++
				}
				if !current(&users.Items[i], v1alpha1.ConditionProfileReady) {
					profiles++
				}
			}
			if users.Continue == "" {
				break
			}
		}
		if invalid == 0 && profiles == 0 {
			return true, ""
		}
		time.Sleep(time.Second * time.Duration(max(1, n/10000)))
		return false, fmt.Sprintf("of %d users, %d without a current Valid condition, %d without a current ProfileReady", seen, invalid, profiles)
	})
}

// sampleUserReady measures spec.samples single new users into row, on top
// of the n users loaded: each from its API write until the agent's RADIUS
// server serves it (servedAt), and deleted again before the next.
func sampleUserReady(t testing.TB, cfg *rest.Config, c client.Client, ag *runningAgent, shards *shardWatch, spec figureSpec, n int, row *figureRow) {
	ctx := context.Background()
	defer samplesProfile(t, n)()
	defer planeProfiles(t, cfg, n)()
	plane := findControlPlane()
	first := time.Now()
	for i := range spec.samples {
		time.Sleep(spec.gap)
		name := fmt.Sprintf("new-%d-%d", n, i)
		gcs, cpu := gcCycles(), plane.cpu()
		start := time.Now()
		if err := createUser(ctx, c, name, name+"@example.com", "pw-"+name); err != nil {
			t.Fatal(err)
		}
		d := sampleDetail{at: start.Sub(first), write: time.Since(start)}
		d.ready = servedAt(t, ag, n+1, time.Minute).Sub(start)
		d.gcs, d.plane = gcCycles()-gcs, plane.cpu().sub(cpu)
		row.agent = append(row.agent, d.ready)
		row.write = append(row.write, d.write)
		if at, ok := shards.seen(credentials.NTHashKey(name+"-password", "password"), 10*time.Second); ok {
			d.credentials = at.Sub(start)
			row.credentials = append(row.credentials, d.credentials)
		}
		row.details = append(row.details, d)
		// Back to n users for the next sample.
		sec, u := userObjects(name, "", "")
		if err := c.Delete(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, sec); err != nil {
			t.Fatal(err)
		}
		servedAt(t, ag, n, time.Minute)
	}
	slices.Sort(row.agent)
	slices.Sort(row.write)
	slices.Sort(row.credentials)
}

// seedObjects reads the gateway and pool createGateway made, as the
// figures' naive gateways build them again.
func seedObjects(t testing.TB, c client.Client) (v1alpha1.VPNGateway, v1alpha1.MobilePool) {
	t.Helper()
	ctx := context.Background()
	var (
		gw   v1alpha1.VPNGateway
		pool v1alpha1.MobilePool
	)
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &gw); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: poolName}, &pool); err != nil {
		t.Fatal(err)
	}
	return gw, pool
}
