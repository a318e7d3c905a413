package diagnose

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLiteralsOfPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern          string
		prefix, contains string
	}{
		{`^received proposals: (.*)$`, "received proposals: ", "received proposals: "},
		{`^selected peer config '(.*)'$`, "selected peer config '", "selected peer config '"},
		{`^(\S+) is initiating an IKE_SA$`, "", " is initiating an IKE_SA"},
		{`^(parsed|generating) (\S+) (request|response) (\d+) \[(.*)\]$`, "", " ["},
		{`(?i)^no EAP key$`, "", ""},
		{`^a|b`, "", ""},
	} {
		got := literalsOf(regexp.MustCompile(tc.pattern))
		if got.prefix != tc.prefix || got.contains != tc.contains {
			t.Errorf("%s: prefix %q contains %q; want %q and %q", tc.pattern, got.prefix, got.contains, tc.prefix, tc.contains)
		}
	}
}

// TestLiteralsAdmitEveryMatch: on every line of the real charons' logs in
// testdata, and on lines made to miss by one character, a signal whose
// pattern matches is never passed over.
func TestLiteralsAdmitEveryMatch(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	if len(files) == 0 {
		t.Fatal("No testdata logs")
	}
	var lines, matched int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range strings.Split(string(b), "\n") {
			ev, ok := ParseLine(raw)
			if !ok {
				continue
			}
			for _, msg := range []string{ev.Msg, " " + ev.Msg, strings.TrimSuffix(ev.Msg, "]")} {
				lines++
				for i, s := range signals {
					if s.re.MatchString(msg) {
						matched++
						if !signalLiterals[i].admits(msg) {
							t.Errorf("%s: signal %s matches %q, its literals %+v do not admit it", f, s.re, msg, signalLiterals[i])
						}
					}
				}
			}
		}
	}
	if matched == 0 {
		t.Fatalf("No signal matched any of %d lines", lines)
	}
}

// BenchmarkObserveLine is the correlator's work per log line over the
// testdata logs, most of whose lines no signal matches.
func BenchmarkObserveLine(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	var events []LogEvent
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if ev, ok := ParseLine(line); ok {
				events = append(events, ev)
			}
		}
	}
	c := NewCorrelator(Options{})
	i := 0
	for b.Loop() {
		c.Observe(events[i%len(events)])
		i++
	}
}
