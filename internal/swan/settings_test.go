package swan

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Other test files of this package may register -update for their own goldens
// too; package variables are initialised before init, so whichever registers
// first wins and both read the same flag.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files from the current output")
	}
}

// settingsGolden compares got with testdata/<t.Name()>.golden, or rewrites it with -update.
func settingsGolden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", t.Name()+".golden")
	if flag.Lookup("update").Value.String() == "true" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Reading golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("Rendered output differs from %s (-want +got):\n%s", path, diff)
	}
}

func TestRenderStrongswanConf(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
	}{
		{name: "empty"},
		{
			name: "gateway",
			s: Settings{
				VICISocket:     "unix:///run/ikegate/charon.vici",
				DisablePlugins: []string{"tpm", "ha", "forecast"},
				Log: Logging{
					Levels: map[string]int{"default": 1, "ike": 2, "cfg": 2, "chd": 2, "knl": 0},
					Stderr: true,
				},
				IKESATableSize:     1024,
				IKESATableSegments: 16,
				Retransmit: Retransmit{
					Tries:   3,
					Timeout: 2500 * time.Millisecond,
					Base:    1.4,
					Jitter:  20,
					Limit:   30 * time.Second,
				},
				HalfOpenTimeout: 10 * time.Second,
			},
		},
		{
			name: "userspace client with file log",
			s: Settings{
				Daemon:             "charon-systemd",
				VICISocket:         "unix:///tmp/ct/vici",
				PluginIncludes:     "/usr/share/strongswan/templates/config/plugins/*.conf",
				UserspaceDataPlane: true,
				Client:             true,
				Log: Logging{
					Levels: map[string]int{"dmn": -1, "esp": 3, "default": 0, "pts": 4},
					File:   &FileLog{Path: "/tmp/ct/charon.log", FlushLine: true, Append: true, TimeFormat: "%b %e %T"},
				},
			},
		},
		{
			name: "error-notify socket",
			s: Settings{
				VICISocket:        "unix:///run/ikegate/charon.vici",
				ErrorNotifySocket: "unix:///run/ikegate/charon.enfy",
			},
		},
		{
			name: "radius gateway",
			s: Settings{
				VICISocket: "unix:///run/ikegate/charon.vici",
				EAPRADIUS:  &EAPRADIUS{Accounting: true, ServersInclude: "/run/ikegate/radius/*.conf"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := RenderStrongswanConf(tc.s)
			if again := RenderStrongswanConf(tc.s); again != got {
				t.Fatalf("Rendering twice differs:\n%s\n---\n%s", got, again)
			}
			if strings.Count(got, "{") != strings.Count(got, "}") {
				t.Fatalf("Unbalanced braces:\n%s", got)
			}
			settingsGolden(t, got)
		})
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want string // substring of the error; empty for valid
	}{
		{name: "valid", s: Settings{Log: Logging{Levels: map[string]int{"ike": 4, "default": -1}}}},
		{name: "unknown subsystem", s: Settings{Log: Logging{Levels: map[string]int{"ikev2": 1}}}, want: `unknown log subsystem "ikev2"`},
		{name: "level too high", s: Settings{Log: Logging{Levels: map[string]int{"ike": 5}}}, want: "outside -1..4"},
		{name: "level too low", s: Settings{Log: Logging{Levels: map[string]int{"cfg": -2}}}, want: "outside -1..4"},
		{name: "relative log path", s: Settings{Log: Logging{File: &FileLog{Path: "charon.log"}}}, want: "not absolute"},
		{name: "table size not power of two", s: Settings{IKESATableSize: 1000}, want: "ikesa_table_size 1000"},
		{name: "segments not power of two", s: Settings{IKESATableSegments: 3}, want: "ikesa_table_segments 3"},
		{name: "socket without scheme", s: Settings{VICISocket: "/run/charon.vici"}, want: "not a unix://"},
		{name: "error-notify socket over TCP", s: Settings{ErrorNotifySocket: "tcp://127.0.0.1:4510"}, want: "not a unix://"},
		{name: "half-open timeout in milliseconds", s: Settings{HalfOpenTimeout: 1500 * time.Millisecond}, want: "half_open_timeout 1.5s"},
		{name: "jitter over 100", s: Settings{Retransmit: Retransmit{Jitter: 101}}, want: "percentage"},
		{name: "plugin with brace", s: Settings{DisablePlugins: []string{"ha }"}}, want: "invalid plugin name"},
		{name: "socket injecting a section", s: Settings{VICISocket: "unix:///x\n}\nfoo {"}, want: "strongswan.conf syntax"},
		{name: "radius include relative", s: Settings{EAPRADIUS: &EAPRADIUS{ServersInclude: "radius/*.conf"}}, want: "not absolute"},
		{name: "radius include with space", s: Settings{EAPRADIUS: &EAPRADIUS{ServersInclude: "/run/a b/*.conf"}}, want: "strongswan.conf syntax"},
		{name: "radius include closing the section", s: Settings{EAPRADIUS: &EAPRADIUS{ServersInclude: "/run/x}"}}, want: "strongswan.conf syntax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate accepted %+v, want error containing %q", tc.s, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate error %q does not contain %q", err, tc.want)
			}
		})
	}
}
