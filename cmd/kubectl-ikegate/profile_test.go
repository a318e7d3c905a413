package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"howett.net/plist"
)

// tlsSecret writes the gateway's server TLS Secret as kubectl get -o yaml prints it.
func tlsSecret(t *testing.T) string {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join("../../internal/profile/testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		return "    " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ")
	}
	doc := "apiVersion: v1\nkind: Secret\nmetadata: {name: vpn-server-tls, namespace: vpn}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n" + read("server.pem") + "\n  ca.crt: |\n" + read("ca.pem") + "\n"
	f := filepath.Join(t.TempDir(), "tls.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestProfileWritesAFileOfEachFormat(t *testing.T) {
	tls := tlsSecret(t)
	for _, f := range []string{"apple", "windows", "android", "networkmanager", "swanctl"} {
		t.Run(f, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "jimp")
			stdout, errOut, err := runCLI(t, "profile", "jimp", "--format", f, "-f", seedDir, "-f", tls, "-o", out)
			if err != nil || stdout != "" {
				t.Fatalf("profile = %v, stdout %q\n%s", err, stdout, errOut)
			}
			info, err := os.Stat(out)
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("Output file: %v, mode %v", err, info.Mode())
			}
			data, _ := os.ReadFile(out)
			if !strings.Contains(string(data), "jimp@example.com") || strings.Contains(string(data), "abc123") {
				t.Errorf("The profile lacks the identity or carries the password:\n%s", data)
			}
			if f == "apple" {
				var v map[string]any
				if _, err := plist.Unmarshal(data, &v); err != nil {
					t.Errorf("Not a property list: %v", err)
				}
			}
		})
	}
}

func TestProfileToStdoutWithCertificateFlags(t *testing.T) {
	td := "../../internal/profile/testdata/"
	out, errOut, err := runCLI(t, "profile", "jimp", "--format", "swanctl", "-f", seedDir, "--server-cert", td+"server.pem", "--ca", td+"ca.pem", "--dial", "198.51.100.10")
	if err != nil {
		t.Fatalf("profile = %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "remote_addrs = 198.51.100.10") {
		t.Errorf("Output:\n%s", out)
	}
}

func TestProfileRefusals(t *testing.T) {
	tls := tlsSecret(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no certificates", []string{"profile", "jimp", "--format", "apple", "-f", seedDir}, "add Secret vpn-server-tls to the manifests"},
		{"unknown format", []string{"profile", "jimp", "--format", "blackberry", "-f", seedDir, "-f", tls}, `unknown --format "blackberry"`},
		{"unknown user", []string{"profile", "bob", "--format", "apple", "-f", seedDir, "-f", tls}, `no VPNUser "bob"`},
		{"a name the gateway lacks", []string{"profile", "jimp", "--format", "apple", "-f", seedDir, "-f", tls, "--dial", "vpn.example.org"}, `no hostname or address "vpn.example.org"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCLI(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
				t.Errorf("profile = %v (output %q), want an error containing %q", err, out, tt.want)
			}
		})
	}
}
