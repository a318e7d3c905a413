package controllers

import (
	"context"
	"fmt"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// TestCredentialsForAgentsThatReadOnlyShards plays a rolling upgrade from
// an agent that reads only the credentials shards, not their recent
// changes: while the gateway's pod reports such an agent, every change of
// a user is in the shard's own Secret, and the changes that were only
// recent when it came are folded into their shards at once.
func TestCredentialsForAgentsThatReadOnlyShards(t *testing.T) {
	c := startSeedGateway(t)
	ctx := context.Background()
	const ns = "vpn"
	gw := &v1alpha1.VPNGateway{}
	mustGet(t, c, ns, "vpn", gw)
	// where reports whether the shard's own Secret holds the Secret's hash,
	// and whether the agent's view (shard and recent changes) does.
	where := func(secret string) (inShard, effective bool, err error) {
		data, shard, err := credentialsOf(ctx, c, ns, "vpn", secret)
		if err != nil {
			return false, false, err
		}
		key := credentials.NTHashKey(secret, gen.PasswordKey)
		_, inShard = shard.Data[key]
		_, effective = data[key]
		return inShard, effective, nil
	}
	holds := func(secret string, wantShard, wantEffective bool) func() error {
		return func() error {
			inShard, effective, err := where(secret)
			if err != nil {
				return err
			}
			if inShard != wantShard || effective != wantEffective {
				return fmt.Errorf("Secret %s's hash: in the shard %v, with its recent changes %v; want %v and %v", secret, inShard, effective, wantShard, wantEffective)
			}
			return nil
		}
	}
	addUser := func(name string) {
		t.Helper()
		if err := c.Create(ctx, gen.Secret(ns, name, map[string]string{gen.PasswordKey: "pw-" + name})); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, gen.User(ns, name, v1alpha1.Identity(name+"@example.com"), gen.OfGateway("vpn"))); err != nil {
			t.Fatal(err)
		}
	}
	pod := v1alpha1.GatewayPodName("vpn", 0)

	// Today's agent: a new user travels in the recent changes alone, once
	// the gateway's shards were first written.
	agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: pod, CredentialsRecent: true})
	for _, s := range []string{"ann", "bob", "cy"} {
		eventually(t, "the shard of Secret "+s, holds(s, false, false))
	}
	addUser("ann")
	eventually(t, "ann's hash in the recent changes only", holds("ann", false, true))

	// The pod now runs an agent that reads the shards alone: ann's change
	// is folded into her shard, and later changes go there at once.
	agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: pod})
	eventually(t, "ann's hash folded into her shard", holds("ann", true, true))
	addUser("bob")
	eventually(t, "bob's hash in his shard", holds("bob", true, true))
	var bob v1alpha1.VPNUser
	mustGet(t, c, ns, "bob", &bob)
	if err := c.Delete(ctx, &bob); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's hash gone from his shard", holds("bob", false, false))

	// Upgraded: changes are recent again.
	agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: pod, CredentialsRecent: true})
	eventually(t, "the report read back", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		if shardOnlyAgents(gw) {
			return fmt.Errorf("agents %+v", gw.Status.Agents)
		}
		return nil
	})
	addUser("cy")
	eventually(t, "cy's hash in the recent changes only", holds("cy", false, true))
}
