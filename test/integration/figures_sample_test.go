package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
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
		var users v1alpha1.VPNUserList
		if err := c.List(ctx, &users, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		invalid, profiles := 0, 0
		for i := range users.Items {
			if !current(&users.Items[i], v1alpha1.ConditionValid) {
				invalid++
			}
			if !current(&users.Items[i], v1alpha1.ConditionProfileReady) {
				profiles++
			}
		}
		if invalid == 0 && profiles == 0 {
			return true, ""
		}
		time.Sleep(time.Second * time.Duration(max(1, n/10000)))
		return false, fmt.Sprintf("of %d users, %d without a current Valid condition, %d without a current ProfileReady", len(users.Items), invalid, profiles)
	})
}

// sampleUserReady measures spec.samples single new users into row, on top
// of the n users loaded: each from its API write until the agent's RADIUS
// server serves it (servedAt), and deleted again before the next.
func sampleUserReady(t testing.TB, c client.Client, ag *runningAgent, shards *shardWatch, spec figureSpec, n int, row *figureRow) {
	ctx := context.Background()
	for i := range spec.samples {
		time.Sleep(spec.gap)
		name := fmt.Sprintf("new-%d-%d", n, i)
		start := time.Now()
		if err := createUser(ctx, c, name, name+"@example.com", "pw-"+name); err != nil {
			t.Fatal(err)
		}
		written := time.Since(start)
		row.agent = append(row.agent, servedAt(t, ag, n+1, time.Minute).Sub(start))
		row.write = append(row.write, written)
		if at, ok := shards.seen(credentials.NTHashKey(name+"-password", "password"), 10*time.Second); ok {
			row.credentials = append(row.credentials, at.Sub(start))
		}
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
