package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestDiagnoseLogGolden runs diagnose --log over a log that real charons
// wrote (internal/diagnose's fixtures, one gateway's attempts after each
// other) and compares the table with the golden file.
func TestDiagnoseLogGolden(t *testing.T) {
	out, errOut, err := runCLI(t, "diagnose", "--log", filepath.Join("testdata", "diagnose.log"))
	if err != nil {
		t.Fatalf("diagnose failed: %v\n%s", err, errOut)
	}
	golden := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("diagnose output differs from %s:\n%s", golden, out)
	}
}

func TestDiagnoseNeedsLog(t *testing.T) {
	if _, _, err := runCLI(t, "diagnose"); err == nil || !strings.Contains(err.Error(), "--log") {
		t.Fatalf("diagnose without --log: %v", err)
	}
}

// TestDiagnoseSyslog reads the same log as syslog carries it: charon's
// syslog logger (sys_logger.c) writes the file logger's line without the
// time, and the syslog daemon prefixes its stamp, the host and the tag.
func TestDiagnoseSyslog(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "diagnose.log"))
	if err != nil {
		t.Fatal(err)
	}
	var syslog strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(file)), "\n") {
		stamp, rest, _ := strings.Cut(line, " ")
		syslog.WriteString("Dec  1 " + stamp + " vpn1 charon: " + rest + "\n")
	}
	path := filepath.Join(t.TempDir(), "syslog")
	if err := os.WriteFile(path, []byte(syslog.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fromSyslog, _, err := runCLI(t, "diagnose", "--log", path)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := runCLI(t, "diagnose", "--log", filepath.Join("testdata", "diagnose.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The same findings; only the WHEN column gains the date (and the
	// table's padding with it).
	words := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if got, want := words(strings.ReplaceAll(fromSyslog, "Dec  1 ", "")), words(fromFile); got != want {
		t.Errorf("syslog findings differ from the file log's:\n%s\nwant:\n%s", got, want)
	}
}

// TestDiagnoseWithoutIKEName reads the log as charon writes it by default,
// without the "<name|id>" prefix (ike_name = no): the attempts come one
// after another, so the same failures are found in the same phases.
func TestDiagnoseWithoutIKEName(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "diagnose.log"))
	if err != nil {
		t.Fatal(err)
	}
	unnamed := regexp.MustCompile(`(?m)^(\S+ \d\d\[[A-Z]{3}\]) <[^>]*> `).ReplaceAllString(string(file), "$1 ")
	if unnamed == string(file) {
		t.Fatal("The fixture log has no ike_name prefixes to drop")
	}
	path := filepath.Join(t.TempDir(), "unnamed.log")
	if err := os.WriteFile(path, []byte(unnamed), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, err := runCLI(t, "diagnose", "--log", path)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := runCLI(t, "diagnose", "--log", filepath.Join("testdata", "diagnose.log"))
	if err != nil {
		t.Fatal(err)
	}
	g, w := phasesAndReasons(got), phasesAndReasons(want)
	if len(w) == 0 {
		t.Fatalf("No findings in the table:\n%s", want)
	}
	if !slices.Equal(g, w) {
		t.Errorf("Without ike_name: %q\nwith: %q", g, w)
	}
}

// phasesAndReasons are the PHASE and REASON columns of diagnose's table.
func phasesAndReasons(out string) []string {
	var rows []string
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 {
			break
		}
		rows = append(rows, f[2]+" "+f[3])
	}
	return rows
}
