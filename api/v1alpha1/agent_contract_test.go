package v1alpha1

import "testing"

func TestDerivedNames(t *testing.T) {
	for got, want := range map[string]string{
		ServerTLSSecretName("vpn"):                 "vpn-server-tls",
		AgentCredentialsSecretName("vpn", 7):       "vpn-agent-credentials-7",
		AgentRecentCredentialsSecretName("vpn", 7): "vpn-agent-credentials-7-recent",
		GatewayWorkloadName("vpn"):                 "vpn-gateway",
		GatewayPodName("vpn", 2):                   "vpn-gateway-2",
		AgentServiceAccountName("vpn"):             "vpn-agent",
		AgentArg(AgentFlagVICISocket, "/x.sock"):   "--vici-socket=/x.sock",
		AgentFieldOwner("vpn-gateway-0"):           "ikegate-agent/vpn-gateway-0",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestNamesParseBack(t *testing.T) {
	tests := []struct {
		name    string
		parse   func(gateway, name string) (int, bool)
		gateway string
		in      string
		want    int
		ok      bool
	}{
		{"credentials shard", AgentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-15", 15, true},
		{"credentials of another gateway", AgentCredentialsSecretIndex, "vpn", "other-agent-credentials-1", 0, false},
		{"credentials with a leading zero", AgentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-01", 0, false},
		{"credentials without a number", AgentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-", 0, false},
		{"credentials with a sign", AgentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-+1", 0, false},
		{"recent credentials", AgentRecentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-15-recent", 15, true},
		{"recent credentials are no shard", AgentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-15-recent", 0, false},
		{"a shard is no recent credentials", AgentRecentCredentialsSecretIndex, "vpn", "vpn-agent-credentials-15", 0, false},
		{"pod", GatewayPodOrdinal, "vpn", "vpn-gateway-3", 3, true},
		{"pod of a gateway whose name ends like ours", GatewayPodOrdinal, "vpn", "a-vpn-gateway-3", 0, false},
		{"pod of another gateway with our prefix", GatewayPodOrdinal, "vpn", "vpn-gateway-x-gateway-0", 0, false},
		{"not a pod", GatewayPodOrdinal, "vpn", "vpn-server-tls", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.parse(tc.gateway, tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parse(%q, %q) = %d, %v; want %d, %v", tc.gateway, tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}
