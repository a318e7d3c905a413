package profile_test

import (
	"testing"

	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
)

// profileScenarios are the gateways whose profiles are pinned as golden
// files, one per format.
var profileScenarios = []struct {
	name string
	mods []func(*swan.Resources)
	opts profile.Options
}{
	{name: "seed"},
	{name: "compatible-pfs-ecp256", mods: []func(*swan.Resources){ikePreset("Compatible"), esp("Compatible", "ECP256")}},
	{name: "modern-pfs-ecp256", mods: []func(*swan.Resources){esp("Modern", "ECP256")}},
	{name: "full-tunnel-dial-address", mods: []func(*swan.Resources){fullTunnel}, opts: profile.Options{Dial: "198.51.100.10", OnDemand: true}},
}

func TestGoldenProfiles(t *testing.T) {
	for _, sc := range profileScenarios {
		t.Run(sc.name, func(t *testing.T) {
			in := input(t, seed(t, sc.mods...), sc.opts)
			for _, f := range profile.Formats {
				t.Run(string(f), func(t *testing.T) {
					got, err := profile.Build(f, in)
					if err != nil {
						t.Fatalf("Build: %v", err)
					}
					again, _ := profile.Build(f, in)
					if string(again) != string(got) {
						t.Fatal("Building the same input twice gave different profiles")
					}
					checkGolden(t, f.Extension(), got)
				})
			}
		})
	}
}
