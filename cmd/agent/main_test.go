package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestFlagsDefaultFromThePodsEnvironment(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "vpn")
	t.Setenv("GATEWAY_NAME", "edge")
	t.Setenv("POD_NAME", "edge-gateway-0")
	t.Setenv("CERTIFICATE_SECRET", "")
	t.Setenv("KUBECONFIG", "")
	c := parseFlags(flag.NewFlagSet("agent", flag.ContinueOnError), []string{"--vici-socket", "/run/x.vici", "--debounce", "80ms"}, nil)
	if c.namespace != "vpn" || c.gateway != "edge" || c.pod != "edge-gateway-0" || c.viciSocket != "/run/x.vici" ||
		c.debounce != 80*time.Millisecond || c.healthAddr != ":8081" || !c.firewall || c.radiusDir != "/run/ikegate/radius" || c.radiusAddr != "127.0.0.1:0" {
		t.Errorf("Parsed %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

func TestMissingIdentityIsRefused(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	t.Setenv("GATEWAY_NAME", "")
	t.Setenv("POD_NAME", "")
	c := parseFlags(flag.NewFlagSet("agent", flag.ContinueOnError), nil, nil)
	err := c.validate()
	for _, want := range []string{"--namespace", "--gateway", "--pod"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate() = %v, want it to name %s", err, want)
		}
	}
}

// The manager writes these flags into the pod spec; an agent without one of
// them would exit at start.
func TestAgentDefinesEveryFlagTheManagerSets(t *testing.T) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	parseFlags(fs, nil, nil)
	for _, name := range []string{v1alpha1.AgentFlagVICISocket, v1alpha1.AgentFlagHealthAddr, v1alpha1.AgentFlagMetricsAddr, v1alpha1.AgentFlagCertificateSecret, v1alpha1.AgentFlagErrorNotifySocket} {
		if fs.Lookup(name) == nil {
			t.Errorf("the agent has no flag --%s", name)
		}
	}
}
