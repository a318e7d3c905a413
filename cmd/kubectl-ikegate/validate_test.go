package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
)

const pool = `apiVersion: ikegate.io/v1alpha1
kind: MobilePool
metadata: {name: staff, namespace: vpn}
spec:
  gatewayRef: {name: vpn}
  addresses: {ipv4: 10.3.200.0/24}
  localNetworks: [10.3.0.0/24]
`

const gateway = `apiVersion: ikegate.io/v1alpha1
kind: VPNGateway
metadata: {name: vpn, namespace: vpn}
spec:
  hostnames: [vpn.example.com]
`

// decodeObjects reads the documents of data as the API client sends them.
func decodeObjects(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// refusal is an API server answer, comparable whatever order its causes
// come in: the API server runs CEL rules over maps in Go's random order, so
// the order of several causes differs from one request to the next even
// there. One cause or none, the message is kept as it is.
type refusal struct {
	message string
	reason  metav1.StatusReason
	causes  string
}

func refusalOf(st metav1.Status) refusal {
	r := refusal{reason: st.Reason}
	var causes []string
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			causes = append(causes, string(c.Type)+" "+c.Field+": "+c.Message)
		}
	}
	sort.Strings(causes)
	r.causes = strings.Join(causes, "\n")
	if len(causes) <= 1 {
		r.message = st.Message
	}
	return r
}

// serverMessage is what the API server answers a create of doc with, as
// kubectl apply sends it (strict field validation), or "" if it accepts it.
func serverMessage(t *testing.T, c client.Client, doc string) refusal {
	t.Helper()
	objs := decodeObjects(t, []byte(doc))
	if len(objs) != 1 {
		t.Fatalf("want one object in %s", doc)
	}
	err := c.Create(context.Background(), objs[0], client.DryRunAll, client.FieldValidation("Strict"))
	if err == nil {
		return refusal{}
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		t.Fatalf("create: %v", err)
	}
	return refusalOf(st.Status())
}

// offlineMessage is what render's validation says about doc, or "".
func offlineMessage(t *testing.T, doc string) refusal {
	t.Helper()
	err := validateManifests(context.Background(), []byte(doc), "doc.yaml")
	if err == nil {
		return refusal{}
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		t.Fatalf("offline validation failed without an API status: %v", err)
	}
	if want := "doc.yaml: document 1: " + st.Status().Message; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	return refusalOf(st.Status())
}

// TestValidationMatchesAPIServer: render's offline validation refuses what
// a real API server refuses, with the API server's message, and accepts
// what it accepts. The cases cover the OpenAPI schema (patterns, enums,
// required fields, bounds), CEL rules, unknown fields, object names and
// defaults the rules depend on.
func TestValidationMatchesAPIServer(t *testing.T) {
	_, c, _ := testenv.Start(t)
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vpn"}}); err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(seedDir, "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seedGateway := string(seed[bytes.Index(seed, []byte("apiVersion: ikegate.io/v1alpha1\nkind: VPNGateway")):])
	cases := map[string]string{
		"valid pool":             pool,
		"valid gateway":          gateway,
		"seed gateway":           seedGateway,
		"pool host address":      strings.Replace(pool, "10.3.200.0/24", "10.3.200.1/24", 1),
		"pool not an address":    strings.Replace(pool, "10.3.200.0/24", "10.3.200.0/33", 1),
		"pool without gateway":   strings.Replace(pool, "  gatewayRef: {name: vpn}\n", "", 1),
		"unknown field":          strings.Replace(gateway, "hostnames:", "hostname:", 1),
		"two unknown fields":     gateway + "  colour: blue\n  size: 3\n",
		"name not a DNS name":    strings.Replace(pool, "name: staff", "name: Staff_1", 1),
		"CEL rule on mssClamp":   gateway + "  firewall: {mssClamp: 100}\n",
		"enum of client auth":    gateway + "  clientAuth: {method: Telepathy}\n",
		"CEL rule needs RADIUS":  gateway + "  clientAuth: {method: EAPRADIUS}\n",
		"integer out of range":   strings.Replace(seedGateway, "replicas: 1", "replicas: 1000", 1),
		"several errors at once": strings.NewReplacer("10.3.200.0/24", "10.3.200.1/24", "10.3.0.0/24", "10.0.0.1/8").Replace(pool),
	}
	valid := map[string]bool{"valid pool": true, "valid gateway": true, "seed gateway": true}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			want := serverMessage(t, c, doc)
			// Each case must be what its name says, or the comparison
			// proves nothing about refusals (or acceptance).
			if refused := want != (refusal{}); refused == valid[name] {
				t.Errorf("API server refused: %v (%+v), want %v", refused, want, !valid[name])
			}
			if got := offlineMessage(t, doc); got != want {
				t.Errorf("offline: %+v\nAPI server: %+v", got, want)
			}
		})
	}
}

// TestRenderRefusesHostAddressPool: the example through the command.
func TestRenderRefusesHostAddressPool(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"gateway.yaml", "pool.yaml", "user.yaml"} {
		data, err := os.ReadFile(filepath.Join(seedDir, f))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("10.3.200.0/24"), []byte("10.3.200.1/24"))
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runCLI(t, "render", "-f", dir)
	want := `MobilePool.ikegate.io "staff" is invalid: spec.addresses.ipv4: Invalid value: "10.3.200.1/24": must be written as its network address`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("render = %v, want %q", err, want)
	}
	if out != "" {
		t.Errorf("a configuration was printed:\n%s", out)
	}
}

// TestRenderLiveGateway: `render -n NS GATEWAY` reads the gateway, its
// members and Secrets from the cluster with the kubeconfig flags and
// prints what rendering the same manifests offline prints.
func TestRenderLiveGateway(t *testing.T) {
	_, c, kubeconfig := testenv.Start(t)
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vpn"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"gateway.yaml", "pool.yaml", "user.yaml"} {
		data, err := os.ReadFile(filepath.Join(seedDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range decodeObjects(t, data) {
			if o.GetKind() == "Namespace" {
				continue
			}
			if err := c.Create(context.Background(), o); err != nil {
				t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	for _, args := range [][]string{nil, {"--show-secrets"}, {"--firewall"}} {
		offline, errOut, err := runCLI(t, append([]string{"render", "-f", seedDir}, args...)...)
		if err != nil {
			t.Fatalf("offline render %v: %v\n%s", args, err, errOut)
		}
		live, errOut, err := runCLI(t, append([]string{"render", "--kubeconfig", kubeconfig, "-n", "vpn", "vpn"}, args...)...)
		if err != nil {
			t.Fatalf("live render %v: %v\n%s", args, err, errOut)
		}
		if live != offline {
			t.Errorf("live render %v differs from the offline one:\nlive:\n%s\noffline:\n%s", args, live, offline)
		}
	}
	// The namespace comes from -n: in another one the gateway is not found.
	if _, _, err := runCLI(t, "render", "--kubeconfig", kubeconfig, "-n", "default", "vpn"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("render in namespace default = %v, want not found", err)
	}
	if _, _, err := runCLI(t, "render", "--kubeconfig", kubeconfig, "-f", seedDir, "vpn"); err == nil {
		t.Error("render with both -f and a GATEWAY succeeded")
	}
}
