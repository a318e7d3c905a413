package main

import (
	"flag"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/controllers"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr bool
	}{
		{
			name: "defaults",
			want: config{metricsAddr: ":8443", probeAddr: ":8081", gatewayWorkers: 2, membersWorkers: 2, statusWorkers: 16, qps: 100, burst: 200,
				images: controllers.Images{Charon: controllers.DefaultCharonImage, Agent: controllers.DefaultAgentImage},
				policy: controllers.Policy{NamespaceIssuers: true}},
		},
		{
			name: "as config/manager runs it",
			args: []string{"--metrics-bind-address=:9443", "--health-probe-bind-address=:9444", "--leader-elect=true",
				"--agent-image=registry.example.com/agent:1", "--charon-image=registry.example.com/charon:1", "--status-workers=4"},
			want: config{metricsAddr: ":9443", probeAddr: ":9444", leaderElect: true, gatewayWorkers: 2, membersWorkers: 2, statusWorkers: 4, qps: 100, burst: 200,
				images: controllers.Images{Charon: "registry.example.com/charon:1", Agent: "registry.example.com/agent:1"},
				policy: controllers.Policy{NamespaceIssuers: true}},
		},
		{
			name: "policy and watched namespaces",
			args: []string{"--watch-namespaces=team-a, team-b", "--gateway-namespaces=team-a", "--gateway-host-network",
				"--gateway-node-selector=ikegate.io/gateway=true,zone=edge", "--gateway-toleration-keys=ikegate.io/edge",
				"--gateway-cluster-issuers=corp,awspca.cert-manager.io/pca", "--gateway-namespace-issuers=false",
				"--gateway-load-balancer-annotations=metallb.io/*", "--gateway-image-pull-policy=Always"},
			want: config{metricsAddr: ":8443", probeAddr: ":8081", gatewayWorkers: 2, membersWorkers: 2, statusWorkers: 16, qps: 100, burst: 200,
				images:          controllers.Images{Charon: controllers.DefaultCharonImage, Agent: controllers.DefaultAgentImage, PullPolicy: "Always"},
				watchNamespaces: []string{"team-a", "team-b"},
				policy: controllers.Policy{
					Namespaces: []string{"team-a"}, HostNetwork: true,
					NodeSelector:   map[string]string{"ikegate.io/gateway": "true", "zone": "edge"},
					TolerationKeys: []string{"ikegate.io/edge"}, ClusterIssuers: []string{"corp", "awspca.cert-manager.io/pca"},
					LoadBalancerAnnotations: []string{"metallb.io/*"},
				}},
		},
		{name: "empty image", args: []string{"--agent-image="}, wantErr: true},
		{name: "unknown pull policy", args: []string{"--gateway-image-pull-policy=Sometimes"}, wantErr: true},
		{name: "node selector without value", args: []string{"--gateway-node-selector=zone"}, wantErr: true},
		{name: "gateway namespace not watched", args: []string{"--watch-namespaces=team-a", "--gateway-namespaces=team-b"}, wantErr: true},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			got, err := parseFlags(fs, tc.args, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchemeKnowsEveryKind(t *testing.T) {
	s := Scheme()
	for _, gvk := range []string{"VPNGateway", "MobilePool", "VPNUser", "Tunnel"} {
		if !s.Recognizes(v1alpha1.GroupVersion.WithKind(gvk)) {
			t.Errorf("scheme lacks %s", gvk)
		}
	}
	for _, k := range []string{"Certificate", "Issuer", "ClusterIssuer"} {
		if !s.Recognizes(cmv1.SchemeGroupVersion.WithKind(k)) {
			t.Errorf("scheme lacks cert-manager %s", k)
		}
	}
}
