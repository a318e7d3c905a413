package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// payloadSubsystems are the subsystems where charon writes decrypted payloads
// or authentication material from level 3 (strongSwan's source, see
// swan.payloadLevel); the test's own list, so that a change there shows here.
var payloadSubsystems = map[string]bool{"ike": true, "enc": true, "cfg": true, "tls": true, "esp": true, "lib": true, "asn": true}

// loggingFields set each subsystem's field of a Logging, by charon's name.
var loggingFields = map[string]func(*v1alpha1.Logging, v1alpha1.LogLevel){
	"default": func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Default = v },
	"dmn":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Daemon = v },
	"mgr":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Manager = v },
	"ike":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.IKE = v },
	"chd":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Child = v },
	"job":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Job = v },
	"cfg":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Config = v },
	"knl":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Kernel = v },
	"net":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Network = v },
	"asn":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.ASN = v },
	"enc":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Encoding = v },
	"tls":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.TLS = v },
	"esp":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.ESP = v },
	"lib":     func(l *v1alpha1.Logging, v v1alpha1.LogLevel) { l.Library = v },
}

// TestEveryLogLevelOfEverySubsystem renders each level for each field alone,
// with and without the opt-in, and checks the level charon gets for every
// subsystem: what was asked, except Diagnostic on a payload subsystem (set on
// it or through default), which stays at Control unless opted in.
func TestEveryLogLevelOfEverySubsystem(t *testing.T) {
	numeric := map[v1alpha1.LogLevel]int{"Silent": -1, "Basic": 0, "Audit": 1, "Control": 2, "Diagnostic": 3}
	for field, set := range loggingFields {
		for level, n := range numeric {
			for _, unsafe := range []bool{false, true} {
				l := v1alpha1.Logging{UnsafeLogDecryptedPayloads: unsafe}
				set(&l, level)
				got := charonLogLevels(l)
				want := map[string]int{field: n}
				for sub := range payloadSubsystems {
					if !unsafe && n == 3 && (field == sub || field == "default") {
						want[sub] = 2
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s %s (unsafe %v): levels (-want +got):\n%s", field, level, unsafe, diff)
				}
			}
		}
	}
}

func TestLogLevelsCombined(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    v1alpha1.Logging
		want map[string]int
	}{
		{"nothing named", v1alpha1.Logging{}, nil},
		{"opt-in alone changes nothing", v1alpha1.Logging{UnsafeLogDecryptedPayloads: true}, nil},
		{
			"diagnostic default keeps a quieter payload subsystem",
			v1alpha1.Logging{Default: "Diagnostic", Encoding: "Silent", IKE: "Audit"},
			map[string]int{"default": 3, "enc": -1, "ike": 1, "cfg": 2, "tls": 2, "esp": 2, "lib": 2, "asn": 2},
		},
		{
			"control default with diagnostic kernel and network",
			v1alpha1.Logging{Default: "Control", Kernel: "Diagnostic", Network: "Diagnostic", Config: "Diagnostic"},
			map[string]int{"default": 2, "knl": 3, "net": 3, "cfg": 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, charonLogLevels(tc.l)); diff != "" {
				t.Errorf("levels (-want +got):\n%s", diff)
			}
		})
	}
}
