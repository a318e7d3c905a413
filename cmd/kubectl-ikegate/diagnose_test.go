package main

import (
	"flag"
	"os"
	"path/filepath"
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
