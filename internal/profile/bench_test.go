package profile_test

import (
	"testing"

	"github.com/ikegate/ikegate/internal/profile"
)

// BenchmarkUserProfiles is what the manager pays per user: every format for
// one user of the seed gateway.
func BenchmarkUserProfiles(b *testing.B) {
	in := input(b, seed(b), profile.Options{})
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range profile.Formats {
			if _, err := profile.Build(f, in); err != nil {
				b.Fatal(err)
			}
		}
	}
}
