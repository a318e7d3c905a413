package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

var logLevels = map[v1alpha1.LogLevel]int{
	"Silent": swan.LogSilent, "Basic": swan.LogAudit, "Audit": 1, "Control": 2, "Diagnostic": 3,
}

// charonSettings are charon's settings for a gateway pod.
func charonSettings(gw *v1alpha1.VPNGateway) swan.Settings {
	// The servers and their secrets are not in the ConfigMap: the agent
	// writes them into the shared directory this include points at.
	var radius *swan.EAPRADIUS
	switch {
	case gw.Spec.UsesRADIUS():
		radius = &swan.EAPRADIUS{Accounting: gw.Spec.ClientAuth.RADIUS.Accounting, ServersInclude: v1alpha1.RADIUSServersInclude}
	case gw.Spec.UsesLocalUsers():
		// The agent's own server on the pod's loopback checks the users'
		// passwords; charon holds none. Accounting stays off: charon
		// accounts for every IKE_SA, tunnels' too, and by default
		// (accounting_close_on_timeout) closes one whose Start goes
		// unanswered, so an agent restart would cut off the sessions made
		// meanwhile.
		radius = &swan.EAPRADIUS{ServersInclude: v1alpha1.RADIUSServersInclude, ClassGroup: true}
	}
	return swan.Settings{
		EAPRADIUS:          radius,
		Daemon:             "charon",
		VICISocket:         v1alpha1.VICISocketURI,
		ErrorNotifySocket:  v1alpha1.ErrorNotifySocketURI,
		UserspaceDataPlane: gw.Spec.UserspaceDataplane(),
		// Plugins that want facilities a container does not give: HA
		// clustering needs its own segments, resolve would rewrite the pod's
		// resolv.conf, forecast and connmark need iptables.
		DisablePlugins:     []string{"ha", "resolve", "forecast", "connmark", "farp", "dhcp"},
		Log:                swan.Logging{Levels: charonLogLevels(gw.Spec.Logging), Stderr: true},
		IKESATableSize:     1024,
		IKESATableSegments: 16,
	}
}

// charonLogLevels are the levels of the subsystems l names, by charon's
// subsystem name, held below decrypted payloads unless l opts in; nil when it
// names none.
func charonLogLevels(l v1alpha1.Logging) map[string]int {
	levels := map[string]int{}
	for sub, lv := range map[string]v1alpha1.LogLevel{
		"default": l.Default, "dmn": l.Daemon, "mgr": l.Manager, "ike": l.IKE, "chd": l.Child,
		"job": l.Job, "cfg": l.Config, "knl": l.Kernel, "net": l.Network, "asn": l.ASN,
		"enc": l.Encoding, "tls": l.TLS, "esp": l.ESP, "lib": l.Library,
	} {
		if v, ok := logLevels[lv]; ok {
			levels[sub] = v
		}
	}
	if len(levels) == 0 {
		return nil
	}
	if !l.UnsafeLogDecryptedPayloads {
		return swan.WithoutPayloads(levels)
	}
	return levels
}

// charonConfigMap holds strongswan.conf for the gateway pods.
func charonConfigMap(gw *v1alpha1.VPNGateway) (*corev1.ConfigMap, error) {
	s := charonSettings(gw)
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("charon settings: %w", err)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(gw, namesFor(gw.Name).CharonConfigMap),
		Data:       map[string]string{v1alpha1.StrongswanConfKey: swan.RenderStrongswanConf(s)},
	}, nil
}

func confHash(cm *corev1.ConfigMap) string {
	sum := sha256.Sum256([]byte(cm.Data[v1alpha1.StrongswanConfKey]))
	return hex.EncodeToString(sum[:8])
}
