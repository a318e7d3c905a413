package names

import (
	"strings"
	"testing"
)

func TestFit(t *testing.T) {
	long := strings.Repeat("a", 253)
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short names are kept", "mobile-staff", 63, "mobile-staff"},
		{"a name of exactly max is kept", strings.Repeat("b", 63), 63, strings.Repeat("b", 63)},
		{"a long name keeps its beginning", long, 63, strings.Repeat("a", 46) + "~"},
		{"only the hash when max is MinMax", long, MinMax, "~"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fit(tt.in, tt.max, '~')
			if len(got) > tt.max {
				t.Errorf("Fit = %q, %d bytes; want at most %d", got, len(got), tt.max)
			}
			if len(tt.in) <= tt.max {
				if got != tt.want {
					t.Errorf("Fit = %q, want %q", got, tt.want)
				}
				return
			}
			if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+hashLen {
				t.Errorf("Fit = %q, want %q followed by %d hex digits", got, tt.want, hashLen)
			}
			if again := Fit(tt.in, tt.max, '~'); again != got {
				t.Errorf("Fit is not deterministic: %q, then %q", got, again)
			}
		})
	}
}

// Names that differ only after the part a shortened name keeps must still
// get different names: the hash covers the whole name.
func TestFitKeepsLongNamesApart(t *testing.T) {
	base := strings.Repeat("x", 100)
	seen := map[string]string{}
	for _, suffix := range []string{"-ipv4", "-ipv6", "-v4", "-v6", ""} {
		got := Fit(base+suffix, 63, '_')
		if prev, ok := seen[got]; ok {
			t.Fatalf("%q and %q both became %q", prev, base+suffix, got)
		}
		seen[got] = base + suffix
	}
}

func TestFitCutsBetweenCharacters(t *testing.T) {
	in := strings.Repeat("é", 40) // two bytes each
	got := Fit(in, 30, '~')
	if !strings.HasPrefix(got, strings.Repeat("é", 6)+"~") {
		t.Errorf("Fit = %q, want six whole characters then the hash", got)
	}
}

func TestFitRefusesRoomlessMax(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Fit with max below MinMax did not panic")
		}
	}()
	Fit("name", MinMax-1, '~')
}
